import PeonAPI
import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import Testing

/// Webhooks through the API: admin only, secret shown once, hostile input a 4xx; events queue in the outbox.
@Suite struct WebhookRoutesTests {
    let h = try! Harness(plans: [:])

    @Test func createListDeleteAndOutbox() throws {
        let r = h.send("POST", "/api/v1/webhooks", key: h.adminKey, body: #"{"url": "http://127.0.0.1:9/x", "events": ["crashed"]}"#)
        #expect(r.status == 201)
        let id = try #require(r.json?["id"]?.stringValue)
        #expect(r.json?["secret"]?.stringValue?.hasPrefix("whsec_") == true)
        let list = h.send("GET", "/api/v1/webhooks", key: h.adminKey)
        #expect(list.json?.arrayValue?.count == 1 && list.json?.arrayValue?.first?["secret"] == nil)
        #expect(!String(decoding: list.body, as: UTF8.self).contains("whsec_"))
        try h.context.store.write { tx in
            try tx.emitEvent(.crashed, server: "valheim.a", now: 5)
            try tx.emitEvent(.started, server: "valheim.a", now: 5)  // not subscribed
        }
        let deliveries = h.send("GET", "/api/v1/webhooks/\(id)/deliveries", key: h.adminKey)
        #expect(deliveries.json?.arrayValue?.map { $0["event"] } == ["crashed"])
        #expect(deliveries.json?.arrayValue?.first?["state"] == "pending")
        #expect(h.send("GET", "/api/v1/webhooks", key: h.adminKey).json?.arrayValue?.first?["last_delivery"]?["event"] == "crashed")
        #expect(h.send("DELETE", "/api/v1/webhooks/\(id)", key: h.adminKey).status == 200)
        #expect(h.send("DELETE", "/api/v1/webhooks/\(id)", key: h.adminKey).status == 404)
        #expect(try h.context.store.read { tx in try tx.deliveries(webhook: id, limit: 10) }.isEmpty, "deliveries go with their hook")
    }

    @Test func scopes() {
        #expect(h.send("GET", "/api/v1/webhooks", key: h.readKey).status == 403)
        #expect(h.send("POST", "/api/v1/webhooks", key: h.readKey, body: #"{"url": "https://e.com/"}"#).status == 403)
        #expect(h.send("GET", "/api/v1/webhooks").status == 401)
    }

    @Test(arguments: [
        "", "[]", "null", #"{"url": "file:///etc/passwd"}"#, #"{"url": "http://10.0.0.1/"}"#, #"{"url": "https://a:b@e.com/"}"#,
        #"{"url": "https://e.com/", "events": [1]}"#, #"{"url": "https://e.com/", "events": {}}"#,
        #"{"url": "https://e.com/", "server": 5}"#,
        #"{"url": "https://e.com/", "server": "$(id).x"}"#, #"{"url": "https://e.com/\u0000"}"#,
        "{\"url\": \"https://e.com/\(String(repeating: "a", count: 5000))\"}",
        "{\"url\": \"https://e.com/\", \"events\": [\(Array(repeating: "\"crashed\"", count: 1000).joined(separator: ","))]}",
    ])
    func hostileBodiesAre400(_ body: String) {
        let r = h.send("POST", "/api/v1/webhooks", key: h.adminKey, body: body)
        #expect(r.status == 400, "\(body.prefix(60)): \(r.status)")
    }

    @Test(arguments: ["..", "wh_", "wh_zzzzzzzzzzzz", "%2e%2e", "wh_0123456789ab%00", String(repeating: "a", count: 300)])
    func hostileIDsAre404(_ id: String) {
        #expect(h.send("DELETE", "/api/v1/webhooks/\(id)", key: h.adminKey).status == 404)
        #expect(h.send("GET", "/api/v1/webhooks/\(id)/deliveries", key: h.adminKey).status == 404)
    }
}
