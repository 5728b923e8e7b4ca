import PeonHTTP
import PeonJSON
import Testing

@Suite struct RouterTests {
    struct Boom: Error {}

    let responder: RouterResponder<Int> = {
        var router = Router<Int>()
        router.on("GET", "/api/v1/plans") { _, context, _ in .json(.int(context)) }
        router.on("PUT", "/api/v1/plans") { _, _, _ in .json("put") }
        router.on("GET", "/api/v1/plan/:game_uid") { _, _, p in .json(.string(p["game_uid"])) }
        router.on("GET", "/api/v1/boom") { _, _, _ in throw Boom() }
        return router.responder { _ in HTTPError(status: 500, code: "internal", message: "Internal error") }
    }()

    func send(_ method: String, _ target: String) -> Response {
        responder.respond(to: Request(method: method, target: target), context: 7)
    }

    @Test func routesAndPassesContext() {
        #expect(send("GET", "/api/v1/plans").json == .int(7))
        #expect(send("GET", "/api/v1/plans/").json == .int(7))
        #expect(send("PUT", "/api/v1/plans").json == "put")
        #expect(send("GET", "/api/v1/plans?x=1").status == 200)
    }

    @Test func namesTheRouteAsRegisteredNeverAsSent() {
        func route(_ method: String, _ target: String) -> String {
            responder.respondWithRoute(to: Request(method: method, target: target), context: 7).route
        }
        #expect(route("GET", "/api/v1/plan/$(id)") == "/api/v1/plan/:game_uid")
        #expect(route("GET", "/api/v1/boom") == "/api/v1/boom")
        // Unknown paths, wrong methods and malformed escapes never become labels of their own.
        #expect(route("GET", "/api/v1/\(String(repeating: "x", count: 10_000))") == "unmatched")
        #expect(route("DELETE", "/api/v1/plans") == "unmatched")
        #expect(route("GET", "/api/v1/plan/%zz") == "unmatched")
    }

    @Test func decodesParameters() {
        #expect(send("GET", "/api/v1/plan/a%20b").json == "a b")
        #expect(send("GET", "/api/v1/plan/%24(id)").json == "$(id)")
        #expect(send("GET", "/api/v1/plan/..").json == "..")
    }

    @Test(arguments: ["/api/v1/plan/%zz", "/api/v1/plan/%", "/api/v1/plan/%ff%fe"])
    func malformedEscapesAre400(_ target: String) {
        let r = send("GET", target)
        #expect(r.status == 400)
        #expect(r.json?["code"] == "request.invalid")
    }

    @Test func unknownPathIsJSON404() {
        let r = send("GET", "/api/v1/nope")
        #expect(r.status == 404)
        #expect(r.header("Content-Type") == "application/json")
        #expect(r.json?["status"] == "error")
        #expect(send("GET", "/api/v1//plans").status == 404)
    }

    @Test func wrongMethodIs405WithAllow() {
        let r = send("DELETE", "/api/v1/plans")
        #expect(r.status == 405)
        #expect(r.header("Allow") == "GET, PUT")
        #expect(r.json?["code"] == "method.not_allowed")
    }

    @Test func envelopeCarriesEveryKeyClientsRead() {
        let r = send("GET", "/api/v1/boom")
        #expect(r.status == 500)
        let body = r.json
        for key in ["status", "info", "error", "detail", "code"] { #expect(body?[key] != nil) }
    }

    @Test func queryItemsAndJSONBodies() throws {
        let r = Request(method: "PUT", target: "/x?a=1&b=hello+world&c=%2F", body: Array(#"{"k": true}"#.utf8))
        #expect(r.queryItem("b") == "hello world")
        #expect(r.queryItem("c") == "/")
        #expect(r.queryItem("z") == nil)
        #expect(try r.jsonObject()["k"] == true)
        #expect(try Request(method: "PUT", target: "/x").jsonObject() == .object([]))
        #expect(throws: HTTPError.self) { try Request(method: "PUT", target: "/x", body: Array("[1]".utf8)).jsonObject() }
        #expect(throws: HTTPError.self) { try Request(method: "PUT", target: "/x", body: Array("{".utf8)).jsonObject() }
    }
}
