import PeonAPI
import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import Testing

/// Cron schedules through the API: stored with their next run, listed, removed; bad input a 4xx.
@Suite struct ScheduleRoutesTests {
    let h = try! Harness(plans: [:])
    let path = "/api/v1/server/schedule/valheim.s1"

    init() throws {
        let uid = try ServerUID(validating: "valheim.s1")
        try h.context.store.write { tx in
            try tx.insertServer(ServerRecord(uid: uid, description: "one", settings: [], createdAt: 0), now: 0)
        }
    }

    @Test func addListRemove() throws {
        let r = h.send("PUT", path, key: h.adminKey, body: #"{"cron": "*/5 * * * *", "tz": "Europe/Berlin", "action": "restart"}"#)
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let id = try #require(CheckedNumber.integer(r.json?["id"], in: 1...Int64.max))
        let next = try #require(CheckedNumber.integer(r.json?["next_run"], in: 1...Int64.max))
        #expect(next % 300 == 0 && r.json?["tz"] == "Europe/Berlin" && r.json?["last_result"] == .null)
        #expect(h.send("PUT", path, key: h.adminKey, body: #"{"cron": "0 3 * * *", "action": "backup"}"#).json?["tz"] == "UTC")
        let list = h.send("GET", path, key: h.readKey)
        #expect(list.status == 200 && list.json?.arrayValue?.count == 2)
        #expect(h.send("DELETE", path, key: h.adminKey, body: "{\"id\": \(Int(id))}").status == 200)
        #expect(h.send("DELETE", path, key: h.adminKey, body: "{\"id\": \(Int(id))}").status == 404)
        #expect(h.send("GET", path, key: h.readKey).json?.arrayValue?.count == 1)
        // Schedules go with their server.
        try h.context.store.write { tx in try tx.deleteServer(ServerUID(validating: "valheim.s1")) }
        #expect(try h.context.store.read { tx in try tx.cronSchedules(server: "valheim.s1") }.isEmpty)
    }

    @Test func scopesAndMissingServers() {
        let body = #"{"cron": "* * * * *", "action": "stop"}"#
        #expect(h.send("PUT", path, key: h.readKey, body: body).status == 403)
        #expect(h.send("PUT", "/api/v1/server/schedule/valheim.nope", key: h.adminKey, body: body).status == 404)
        #expect(h.send("GET", "/api/v1/server/schedule/valheim.nope", key: h.adminKey).status == 404)
        #expect(h.send("DELETE", "/api/v1/server/schedule/valheim.nope", key: h.adminKey, body: #"{"id": 1}"#).status == 404)
    }

    static let hostileBodies = [
        "", "[]", "null", #"{"cron": "* * * *", "action": "stop"}"#, #"{"cron": "$(id) * * * *", "action": "stop"}"#,
        #"{"cron": "* * * * *", "action": "stop", "tz": "Mars/Olympus"}"#,
        #"{"cron": "* * * * *", "action": "stop", "tz": "../../etc/passwd"}"#,
        #"{"cron": "* * * * *", "action": "stop", "tz": "Europe"}"#, #"{"cron": "* * * * *", "action": "stop", "tz": "zone.tab"}"#,
        #"{"cron": "* * * * *", "action": "rm -rf"}"#, #"{"cron": "\#(String(repeating: "*", count: 10000))", "action": "stop"}"#,
        #"{"cron": "* * * * *", "action": "command", "command": "\#(String(repeating: "x", count: 600))"}"#,
        #"{"cron": "1e400 * * * *", "action": "stop"}"#, #"{"cron": ["*"], "action": "stop"}"#,
        #"{"cron": "* * * * *", "action": "stop", "tz": "\u0000"}"#,
    ]

    @Test(arguments: hostileBodies)
    func hostileBodiesAre400(_ body: String) {
        let r = h.send("PUT", path, key: h.adminKey, body: body)
        #expect(r.status == 400, "\(body.prefix(80)): \(r.status)")
        #expect(r.json?["status"] == "error")
    }

    @Test(arguments: ["", "{}", #"{"id": "x"}"#, #"{"id": -1}"#, #"{"id": 1e300}"#, #"{"id": 1.5}"#, #"{"id": null}"#])
    func hostileDeletesAre400(_ body: String) {
        #expect(h.send("DELETE", path, key: h.adminKey, body: body).status == 400, "\(body)")
    }

    @Test func perServerCap() {
        for _ in 0..<32 { #expect(h.send("PUT", path, key: h.adminKey, body: #"{"cron": "0 0 * * *", "action": "stop"}"#).status == 200) }
        #expect(h.send("PUT", path, key: h.adminKey, body: #"{"cron": "0 0 * * *", "action": "stop"}"#).status == 409)
    }
}

/// `idle_stop` on create and modify: minutes 1-10080, 0 or null off; anything else a 400.
@Suite struct IdleStopRouteTests {
    let h = try! Harness()

    @Test func hostileIdleStopIs400AndValidOnesShow() throws {
        let uid = try ServerUID(validating: "peontest.idle")
        try h.context.store.write { tx in try tx.insertServer(ServerRecord(uid: uid, description: "", settings: [], createdAt: 0), now: 0) }
        let path = "/api/v1/server/modify/peontest.idle"
        for bad in ["-1", "10081", "1e300", "1.5", "\"ten\"", "[]", "{}", "true", #""\u0000""#] {
            let r = h.send("PUT", path, key: h.adminKey, body: "{\"PASSWORD\": \"p\", \"SERVER_NAME\": \"s\", \"idle_stop\": \(bad)}")
            #expect(r.status == 400 && r.json?["info"]?.stringValue?.contains("idle_stop") == true, "\(bad): \(r.status)")
        }
        let r = h.send("PUT", path, key: h.adminKey, body: #"{"PASSWORD": "p", "SERVER_NAME": "s", "idle_stop": 20}"#)
        #expect(r.status == 200 && r.json?["idle_stop"] == 20, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(r.json?["idle_stop"] == 20 && r.json?["players"] == .null && r.json?["max_players"] == .null)
        #expect(
            h.send("PUT", path, key: h.adminKey, body: #"{"PASSWORD": "p", "SERVER_NAME": "s", "idle_stop": 0}"#).json?["idle_stop"]
                == .null)
    }
}
