import PeonAPI
import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem
import Testing

/// Keys, audit and metrics over the API, in-process.
@Suite struct AdminRoutesTests {
    let h = try! Harness()

    @Test func keysCreateListRevoke() throws {
        let created = h.send(
            "POST", "/api/v1/keys", key: h.adminKey, body: #"{"scope":"operate","label":"ci","expires_at":"2099-01-01T00:00:00Z"}"#)
        #expect(created.status == 201)
        let id = try #require(created.json?["id"]?.stringValue)
        let secret = try #require(created.json?["key"]?.stringValue)
        #expect(created.json?["expires_at"] == "2099-01-01T00:00:00Z")
        // The new key works, and has its scope only.
        #expect(h.send("GET", "/api/v1/servers", key: secret).status == 200)
        #expect(h.send("GET", "/api/v1/keys", key: secret).status == 403)
        let list = h.send("GET", "/api/v1/keys", key: h.adminKey)
        #expect(list.status == 200)
        let text = String(decoding: list.body, as: UTF8.self)
        #expect(text.contains(id) && !text.contains(secret) && !text.contains("hash"))
        #expect(h.send("DELETE", "/api/v1/keys/\(id)", key: h.adminKey).status == 200)
        #expect(h.send("GET", "/api/v1/servers", key: secret).json?["code"] == "auth.revoked_key")
        #expect(h.send("DELETE", "/api/v1/keys/\(id)", key: h.adminKey).status == 404)
    }

    @Test func theLastAdminKeyStays() throws {
        let keys = h.send("GET", "/api/v1/keys", key: h.adminKey).json?["keys"]
        guard case .array(let items)? = keys else {
            Issue.record("no keys")
            return
        }
        let admin = try #require(items.first { $0["scope"] == "admin" }?["id"]?.stringValue)
        let (_, other) = try h.context.store.write { tx in try APIKeys.create(in: tx, scope: .admin, label: "other", now: 0) }
        // Not with itself, and then not as the last admin key that does not expire.
        #expect(h.send("DELETE", "/api/v1/keys/\(admin)", key: h.adminKey).json?["code"] == "key.self")
        let first = h.send("DELETE", "/api/v1/keys/\(admin)", key: other)
        #expect(first.status == 200)
        let keys2 = h.send("GET", "/api/v1/keys", key: other).json?["keys"]
        guard case .array(let now)? = keys2 else {
            Issue.record("no keys")
            return
        }
        let last = try #require(now.first { $0["scope"] == "admin" && $0["revoked"] == .bool(false) }?["id"]?.stringValue)
        let (_, third) = try h.context.store.write { tx in
            try APIKeys.create(in: tx, scope: .admin, label: "expiring", expiresAt: WallClock.now() + 3600, now: 0)
        }
        let answer = h.send("DELETE", "/api/v1/keys/\(last)", key: third)
        #expect(answer.status == 409 && answer.json?["code"] == "key.last_admin")
    }

    @Test func expiredKeysAreRefused() throws {
        let (_, key) = try h.context.store.write { tx in
            try APIKeys.create(in: tx, scope: .admin, label: "old", expiresAt: WallClock.now() - 1, now: 0)
        }
        #expect(h.send("GET", "/api/v1/servers", key: key).json?["code"] == "auth.expired_key")
    }

    @Test(arguments: [
        #"{"scope":"root"}"#, #"{}"#, #"[]"#, #"{"scope":"read","label":"a\nb"}"#, #"{"scope":"read","label":5}"#,
        #"{"scope":"read","expires_at":"yesterday"}"#, #"{"scope":"read","expires_at":1}"#, #"{"scope":"read","expires_at":1e300}"#,
        #"{"scope":"read","expires_at":-5}"#, #"{"scope":"read","expires_at":"2020-01-01"}"#,
        #"{"scope":"read","label":"\#(String(repeating: "x", count: 10_000))"}"#,
        #"{"scope":"read","label":"\u0000"}"#, "not json", #"{"scope":{"$(id)":1}}"#,
    ])
    func hostileKeyBodiesAre400(_ body: String) {
        let answer = h.send("POST", "/api/v1/keys", key: h.adminKey, body: body)
        #expect(answer.status == 400, "\(body.prefix(60))")
        #expect(answer.json?["status"] == "error")
    }

    @Test(arguments: ["..", "%2e%2e", "$(id)", "a%00b", String(repeating: "k", count: 10_000), "%zz", "ключ"])
    func hostileKeyIDsAre4xx(_ id: String) {
        let answer = h.send("DELETE", "/api/v1/keys/\(id)", key: h.adminKey)
        #expect((400..<500).contains(answer.status), "\(id.prefix(40))")
    }

    @Test func auditPagesNewestFirst() throws {
        for n in 0..<5 { _ = h.send("POST", "/api/v1/keys", key: h.adminKey, body: #"{"scope":"read","label":"k\#(n)"}"#) }
        let first = h.send("GET", "/api/v1/audit?limit=2", key: h.adminKey)
        #expect(first.status == 200)
        guard case .array(let page)? = first.json?["entries"] else {
            Issue.record("no entries")
            return
        }
        #expect(page.count == 2)
        let cursor = try #require(first.json?["next"]?.stringValue)
        let second = h.send("GET", "/api/v1/audit?limit=2&cursor=\(cursor)", key: h.adminKey)
        guard case .array(let older)? = second.json?["entries"] else {
            Issue.record("no entries")
            return
        }
        let ids = (page + older).compactMap { CheckedNumber.integer($0["id"], in: 1...Int64.max) }
        #expect(ids == ids.sorted(by: >) && Set(ids).count == 4)
        let byKey = h.send("GET", "/api/v1/audit?key=nobody", key: h.adminKey)
        #expect(byKey.json?["entries"] == .array([]) && byKey.json?["next"] == .null)
        #expect(h.send("GET", "/api/v1/audit", key: h.readKey).status == 403)
    }

    @Test(arguments: [
        "limit=0", "limit=1001", "limit=-1", "limit=1e3", "limit=99999999999999999999", "since=yesterday", "since=2026-02-30",
        "cursor=0", "cursor=abc", "server=..", "server=a.b.c", "server=%24(id).x", "key=", "key=\(String(repeating: "k", count: 100))",
    ])
    func hostileAuditQueriesAre400(_ query: String) {
        let answer = h.send("GET", "/api/v1/audit?\(query)", key: h.adminKey)
        #expect(answer.status == 400, "\(query.prefix(40))")
    }

    @Test func metricsOnlyWhenNginxAllowed() {
        #expect(h.send("GET", "/metrics").status == 403)
        #expect(h.send("GET", "/metrics", key: h.adminKey).status == 403)
        _ = h.send("GET", "/api/v1/servers", key: "wrong-key-wrong-key")
        var request = Request(method: "GET", target: "/metrics")
        request.metricsAllowed = true
        let answer = h.api.respond(to: request, context: h.context)
        #expect(answer.status == 200)
        let text = String(decoding: answer.body, as: UTF8.self)
        #expect(text.contains(#"peon_http_requests_total{route="/api/v1/servers",method="GET",status="401"} 1"#))
        #expect(text.contains(#"peon_auth_failures_total{client="203.0.113.5",reason="auth.invalid_key"} 1"#))
        #expect(text.contains("# TYPE peon_http_request_duration_seconds histogram"))
        #expect(text.contains(#"peon_http_requests_total{route="unmatched""#) == false)
    }
}
