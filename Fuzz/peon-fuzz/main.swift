// libFuzzer entry point (built only with PEON_FUZZ=1, see scripts/fuzz.sh): everything a client
// or a plan source sends before it reaches the store, in one harness.
//
// Input: the first line is `METHOD target` (path and query, still percent-encoded), the rest is the
// body. The body also goes, as a document, to the plan, plan-index and manifest parsers.
import CFuzz
import PeonCore
import PeonHTTP
import PeonJSON

/// The API's route patterns over the same validation the handlers run, without a store.
let responder: RouterResponder<Void> = {
    var router = Router<Void>()
    for (method, path) in [
        ("GET", "/api/v1/orchestrator"), ("GET", "/api/v1/plans"), ("PUT", "/api/v1/plans"), ("GET", "/api/v1/plan/:game_uid"),
        ("GET", "/api/v1/servers"), ("PUT", "/api/v1/servers"), ("GET", "/api/v1/jobs/:id"), ("POST", "/api/v1/server/create"),
        ("GET", "/api/v1/server/files/:uid"), ("GET", "/api/v1/server/file/:uid"), ("PUT", "/api/v1/server/file/:uid"),
        ("DELETE", "/api/v1/server/file/:uid"),
        ("GET", "/api/v1/server/:action/:uid"), ("PUT", "/api/v1/server/:action/:uid"), ("DELETE", "/api/v1/server/:action/:uid"),
    ] {
        router.on(method, path) { request, _, parameters in
            try validate(request, parameters)
            return .json(["status": "success"])
        }
    }
    return router.responder { _ in HTTPError(status: 400, code: "request.invalid", message: "refused") }
}()

let plan: Plan = {
    let text = #"""
        {"metadata": {"game_uid": "fuzz", "image": "peon-test-game:latest"},
         "ports": [[{"PORT": ["27960", "tcp/udp"]}], [{"PORT": [27970, "udp"]}]],
         "environment": {"STEAM_ID": "0", "SERVER_NAME": null, "PASSWORD": {"required": true}, "MAX": {"default": 8}},
         "volumes": {"~!/data": "/data", "~!/config": "/config"}, "limits": {"memory_mb": 64, "cpus": 0.5, "pids": 64}}
        """#
    return try! Plan(document: JSON.parse(text), expectedGameUID: GameUID(validating: "fuzz"))
}()

func validate(_ request: Request, _ parameters: Parameters) throws {
    _ = request.queryItem("async")
    if !parameters["game_uid"].isEmpty { _ = try GameUID(validating: parameters["game_uid"]) }
    if !parameters["id"].isEmpty { _ = CheckedNumber.integer(parameters["id"], in: 1...Int64.max) }
    if !parameters["uid"].isEmpty { _ = try? ServerUID(validating: parameters["uid"]) }
    if let text = request.queryItem("path") { checkFilePath(text) }
    checkFilePath(String(decoding: request.body.prefix(2048), as: UTF8.self))
    let body = try request.jsonObject()
    _ = try? ScheduledTime.parse(body, now: 1_800_000_000)
    _ = try? ResourceLimits.parse(body["limits"], over: plan.limits)
    _ = try? CrashPolicy.parse(body["crash_policy"])
    _ = try? ServerSettings.resolve(plan: plan, request: body)
    if let game = body["game_uid"]?.stringValue { _ = try? GameUID(validating: game) }
    if let schedule = try? CronScheduleRequest(body) { _ = schedule.cron.next(after: 1_800_000_000, in: berlin) }
    _ = try? WebhookRequest(body)
    _ = try? IdleStop.parse(body["idle_stop"])
}

/// The files API's path rules: what parses is plain names below an area, and parses again the same.
func checkFilePath(_ text: String) {
    guard let path = try? ServerFilePath(validating: text) else { return }
    let description = path.description
    precondition(!description.hasPrefix("/") && description.unicodeScalars.count <= ServerFilePath.maximumLength, "absolute or long: \(description)")
    precondition(path.components.count <= ServerFilePath.maximumDepth, "too deep")
    for name in path.components {
        precondition(!name.isEmpty && name != "." && name != ".." && !name.contains("/"), "bad name \(name)")
        precondition(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "control character")
    }
    precondition(ServerFilePath.Area(rawValue: path.components[0]) != nil, "outside the areas")
    precondition((try? ServerFilePath(validating: description)) == path, "does not parse again the same")
}

/// A zone with daylight saving, for next-run computations of fuzzed expressions.
let berlin = try! TimeZoneRules(name: "Europe/Berlin", posix: "CET-1CEST,M3.5.0,M10.5.0/3")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let newline = bytes.firstIndex(of: 0x0A) ?? bytes.endIndex
    let line = String(decoding: bytes[..<newline], as: UTF8.self)
    let body = newline < bytes.endIndex ? Array(bytes[(newline + 1)...]) : []
    let parts = line.split(separator: " ", maxSplits: 1)
    let method = parts.first.map(String.init) ?? "GET"
    let target = parts.count > 1 ? String(parts[1]) : "/"
    _ = responder.respond(to: Request(method: method, target: target, body: body), context: ())

    // The same bytes as what the scheduler reads from games and the system: a TZif zone, an A2S
    // reply, a Luanti log, an RCON answer.
    _ = (try? TimeZoneRules(name: "fuzz", tzif: body))?.offset(at: 4_000_000_000)
    _ = PlayerQuery.a2sInfo(body)
    _ = PlayerQuery.luantiPlayers(log: String(decoding: body, as: UTF8.self))
    // ... and a game's RCON stream, once the password was accepted.
    if var exchange = try? RconExchange(password: "pw", command: "status", maximumBytes: 1024),
        (try? exchange.receive(RconPacket(id: 1, type: 2, body: []))) != nil
    {
        var decoder = RconDecoder()
        decoder.append(body)
        while let packet = try? decoder.next(), let step = try? exchange.receive(packet), step == .wait {}
        _ = try? exchange.ended(closed: true)
    }

    // The same bytes as documents: a plan, a plans index, a server manifest, and back to text.
    if let document = try? JSON.parse(body) {
        _ = document.bytes
        _ = try? Plan(document: document, expectedGameUID: GameUID(validating: "fuzz"))
        _ = try? PlanIndexEntry.parseIndex(document)
        _ = try? ServerManifest(document: document, uid: ServerUID(validating: "fuzz.one"), plan: plan)
        _ = try? PlayerQuery.parse(document)
    }
    return 0
}

// SwiftPM links an executable's entry point as `<module>_main` (`--defsym main=peon_fuzz_main`), so
// the harness provides that symbol and hands control to libFuzzer's own driver.
@_cdecl("peon_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(UnsafeRawPointer(data), size)
    }
}
