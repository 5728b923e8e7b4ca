import Logging
import PeonAPI
import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The API in-process on a temporary data dir with the bundled plans: no FastCGI, no nginx.
final class Harness {
    let api = PeonAPI()
    let context: APIContext
    let dataDir: String
    let adminKey = "admin-key-0123456789"
    var readKey = ""
    var readKeyID = ""

    init(plans: [String: String]? = nil, environment: [String: String] = [:]) throws {
        var template = Array("/tmp/peon-api-test-XXXXXX".utf8CString)
        dataDir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let configuration = try Configuration(environment: environment.merging(["PEON_DATA_DIR": dataDir]) { $1 }, defaultWorkers: 1)
        if let plans {
            for (path, text) in plans {
                try Files.makeDirectories(Files.directory(of: "\(configuration.plansDir)/\(path)"))
                try Files.write("\(configuration.plansDir)/\(path)", Array(text.utf8))
            }
        } else {
            let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
            try PlanCatalog.seed(plansDir: configuration.plansDir, bundled: root + "/plans")
        }
        let store = try Store(path: configuration.databasePath)
        _ = try PlanCatalog.refresh(store: store, plansDir: configuration.plansDir, plansURL: nil, curl: { fatalError() }, now: 0)
        let adminKey = self.adminKey
        try store.write { tx in _ = try APIKeys.bootstrap(in: tx, configured: adminKey, now: 0) }
        (readKeyID, readKey) = try store.write { tx in try APIKeys.create(in: tx, scope: .read, label: "ro", now: 0) }
        context = APIContext(store: store, configuration: configuration, logger: Logger(label: "test"), startedAt: 0)
    }

    deinit { try? Files.removeTree(dataDir) }

    func send(_ method: String, _ target: String, key: String? = nil, body: String = "") -> Response {
        var headers: [String: String] = [:]
        if let key { headers["X-Api-Key"] = key }
        return api.respond(
            to: Request(method: method, target: target, headers: headers, body: Array(body.utf8), remoteAddress: "203.0.113.5"),
            context: context)
    }
}

let routes: [(String, String)] = [
    ("GET", "/api/v1/orchestrator"), ("GET", "/api/v1/plans"), ("PUT", "/api/v1/plans"), ("GET", "/api/v1/plan/valheim"),
]

@Suite struct APITests {
    let h = try! Harness()

    @Test(arguments: routes)
    func everyRouteNeedsAKey(_ route: (String, String)) throws {
        for key in [nil, "", "wrong-key-123", "peon_" + String(repeating: "x", count: 40), String(repeating: "k", count: 5000)] {
            let r = h.send(route.0, route.1, key: key)
            #expect(r.status == 401, "\(route) with \(String(describing: key?.prefix(10)))")
            #expect(r.json?["status"] == "error")
            #expect(r.json?["info"]?.stringValue?.hasPrefix("Not authorized") == true)
            #expect(!r.body.isEmpty && !String(decoding: r.body, as: UTF8.self).contains("wrong-key"))
        }
    }

    @Test func revokedKeysStopWorking() throws {
        #expect(h.send("GET", "/api/v1/plans", key: h.readKey).status == 200)
        let id = h.readKeyID
        #expect(try h.context.store.write { tx in try tx.revokeKey(id: id, now: 1) } == .revoked)
        let r = h.send("GET", "/api/v1/plans", key: h.readKey)
        #expect(r.status == 401)
        #expect(r.json?["code"] == "auth.revoked_key")
    }

    @Test func readScopeCannotRefreshPlans() throws {
        let r = h.send("PUT", "/api/v1/plans", key: h.readKey)
        #expect(r.status == 403)
        #expect(r.json?["code"] == "auth.scope")
    }

    @Test func orchestratorReportsVersion() throws {
        let r = h.send("GET", "/api/v1/orchestrator", key: h.adminKey)
        #expect(r.status == 200)
        #expect(r.json?["version"] == .string(Configuration.defaultVersion))
        #expect(r.json?["plans"] == .int(17))  // the bundled plans, luanti included
    }

    @Test func plansAreSortedByTitleWithThreeKeys() throws {
        let r = h.send("GET", "/api/v1/plans", key: h.readKey)
        let list = try #require(r.json?.arrayValue)
        #expect(list.count >= 11)
        let titles = list.compactMap { $0["title"]?.stringValue }
        #expect(titles == titles.sorted())
        for entry in list { #expect(entry.objectValue?.map(\.0) == ["title", "game_uid", "plan_url"]) }
    }

    @Test func planSettingsMatchPEON() throws {
        let r = h.send("GET", "/api/v1/plan/valheim", key: h.readKey)
        #expect(
            String(decoding: r.body, as: UTF8.self)
                == #"{"SERVER_NAME":"","WORLD_NAME":"","PASSWORD":"","PUBLIC":"1","description":"A Valheim game server for PEON."}"#)
        let missing = h.send("GET", "/api/v1/plan/nosuchgame", key: h.readKey)
        #expect(missing.status == 404)
        #expect(missing.json?["info"] == "Could not get the settings for [nosuchgame]")
    }

    @Test(arguments: [
        "..", ".", "%2e%2e", "a;b", "%24(id)", "a%20b", "%C3%A9", "%F0%9F%98%80", "Valheim", "a.b", "%00",
        String(repeating: "a", count: 10_000),
    ])
    func hostileGameUIDsAre400(_ segment: String) throws {
        let r = h.send("GET", "/api/v1/plan/\(segment)", key: h.readKey)
        #expect(r.status == 400)
        #expect(r.json?["code"] == "request.invalid")
        #expect(r.body.count < 600)
    }

    @Test func changesAreAudited() throws {
        _ = h.send("PUT", "/api/v1/plans", key: h.adminKey)
        _ = h.send("PUT", "/api/v1/plans", key: h.readKey)
        _ = h.send("PUT", "/api/v1/plans", key: "nope-nope-nope")
        _ = h.send("DELETE", "/api/v1/server/destroy/a.b")
        _ = h.send("GET", "/api/v1/plans", key: h.adminKey)
        let rows = try h.context.store.read { tx in try tx.recentAudit(limit: 10) }
        // Requests without a valid key leave no row (nginx's access log has them).
        #expect(rows.map(\.status) == [403, 200])
        #expect(rows.allSatisfy { $0.method == "PUT" && $0.path == "/api/v1/plans" && $0.clientIP == "203.0.113.5" })
        #expect(rows[0].keyID == h.readKeyID && rows[0].result == "auth.scope")
        #expect(rows.allSatisfy { $0.keyID != nil })
    }

    @Test func lastUsedAtIsWrittenOncePerMinute() throws {
        #expect(try h.context.store.read { tx in try tx.listKeys() }.allSatisfy { $0.lastUsedAt == nil })
        #expect(h.send("GET", "/api/v1/plans", key: h.readKey).status == 200)
        let used = try h.context.store.read { tx in try tx.listKeys() }.first { $0.id == h.readKeyID }?.lastUsedAt
        #expect(used != nil && abs(used! - WallClock.now()) < 5)
        try h.context.store.write { tx in try tx.touchKey(id: h.readKeyID, now: used! + 30) }
        #expect(try h.context.store.read { tx in try tx.listKeys() }.first { $0.id == h.readKeyID }?.lastUsedAt == used)
        try h.context.store.write { tx in try tx.touchKey(id: h.readKeyID, now: used! + 61) }
        #expect(try h.context.store.read { tx in try tx.listKeys() }.first { $0.id == h.readKeyID }?.lastUsedAt == used! + 61)
    }

    @Test func changingTheConfiguredKeyRevokesTheOldOneButNeverTheLastAdmin() throws {
        let store = h.context.store
        try store.write { tx in _ = try APIKeys.bootstrap(in: tx, configured: "a-new-admin-key-0123456789", now: 5) }
        #expect(h.send("GET", "/api/v1/plans", key: h.adminKey).json?["code"] == "auth.revoked_key")
        #expect(h.send("GET", "/api/v1/plans", key: "a-new-admin-key-0123456789").status == 200)
        // The same key again changes nothing.
        try store.write { tx in _ = try APIKeys.bootstrap(in: tx, configured: "a-new-admin-key-0123456789", now: 6) }
        #expect(h.send("GET", "/api/v1/plans", key: "a-new-admin-key-0123456789").status == 200)
        let admin = try store.read { tx in try tx.listKeys() }.first { $0.scope == .admin && $0.revokedAt == nil }!
        #expect(try store.write { tx in try tx.revokeKey(id: admin.id, now: 7) } == .lastAdmin)
        #expect(try store.write { tx in try tx.revokeKey(id: "key_nope", now: 7) } == .notFound)
        #expect(try store.write { tx in try tx.revokeKey(id: h.readKeyID, now: 7) } == .revoked, "other scopes may all go")
    }
}

@Suite struct PlanRefreshTests {
    static let good = #"{"metadata": {"game_uid": "good", "image": "x/y"}, "volumes": {"~!/data": "/data"}, "environment": {"A": null}}"#

    @Test func refreshReportsNewBadAndRemoved() throws {
        let h = try Harness(plans: [
            "plans.json":
                #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}, {"title": "Bad", "game_uid": "bad", "plan_url": "u"}]"#,
            "good/plan.json": Self.good,
            "bad/plan.json": #"{"metadata": {"game_uid": "bad", "image": "x"}, "volumes": {"/etc": "/etc"}}"#,
        ])
        #expect(h.send("GET", "/api/v1/plans", key: h.readKey).json?.arrayValue?.count == 1)
        // A new plan appears; the broken one is still reported, and nothing else changes.
        try Files.makeDirectories(h.context.configuration.plansDir + "/extra")
        try Files.write(
            h.context.configuration.plansDir + "/extra/plan.json", Array(Self.good.replacing("\"good\"", with: "\"extra\"").utf8))
        try Files.write(
            h.context.configuration.plansDir + "/plans.json",
            Array(
                #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}, {"title": "Extra", "game_uid": "extra", "plan_url": "e"}, {"title": "Bad", "game_uid": "bad", "plan_url": "u"}]"#
                    .utf8))
        let r = h.send("PUT", "/api/v1/plans", key: h.adminKey)
        #expect(r.status == 200)
        #expect(r.json?["new_recipies"] == ["extra": ["title": "Extra", "game_uid": "extra", "plan_url": "e"]])
        #expect(r.json?["failed"]?.arrayValue?.first?["game_uid"] == "bad")
        #expect(h.send("GET", "/api/v1/plan/extra", key: h.readKey).json == ["A": "", "description": "A PEON game server for extra."])
    }

    @Test func aBrokenPlanKeepsItsPreviousVersion() throws {
        let h = try Harness(plans: [
            "plans.json": #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}]"#, "good/plan.json": Self.good,
        ])
        try Files.write(h.context.configuration.plansDir + "/good/plan.json", Array("{ not json".utf8))
        let r = h.send("PUT", "/api/v1/plans", key: h.adminKey)
        // Nothing valid left at all: refused, catalog intact.
        #expect(r.status == 422)
        #expect(h.send("GET", "/api/v1/plan/good", key: h.readKey).status == 200)
    }

    @Test func unreachableMirrorLeavesCatalogIntact() throws {
        let h = try Harness(plans: [
            "plans.json": #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}]"#, "good/plan.json": Self.good,
        ])
        var configuration = h.context.configuration
        configuration.plansURL = "http://127.0.0.1:9/plans"
        let context = APIContext(store: h.context.store, configuration: configuration, logger: Logger(label: "t"), startedAt: 0)
        let r = h.api.respond(to: Request(method: "PUT", target: "/api/v1/plans", headers: ["X-Api-Key": h.adminKey]), context: context)
        #expect(r.status == 502)
        #expect(r.json?["code"] == "plans.index_unavailable")
        #expect(h.send("GET", "/api/v1/plans", key: h.readKey).json?.arrayValue?.count == 1)
    }
}

@Suite struct APIKeyTests {
    @Test func generatedKeysAreLongAndDistinct() {
        let keys = (0..<100).map { _ in APIKeys.generate() }
        #expect(Set(keys).count == 100)
        #expect(keys.allSatisfy { $0.hasPrefix("peon_") && $0.count == 45 })
    }

    @Test func digestAndLookup() {
        let d = APIKeys.digest("Zu88Zu88")
        #expect(d.count == 32)
        #expect(APIKeys.lookup(d).count == 16)
        #expect(APIKeys.constantTimeEqual(d, APIKeys.digest("Zu88Zu88")))
        #expect(!APIKeys.constantTimeEqual(d, APIKeys.digest("Zu88Zu89")))
        #expect(!APIKeys.constantTimeEqual(d, Array(d.prefix(31))))
        #expect(APIKeys.displayPrefix("peon_abcdefghijk") == "peon_abcd")
    }

    @Test func storesOnlyTheHash() throws {
        let h = try Harness(plans: [:])
        let rows = try h.context.store.read { tx in try tx.query("SELECT * FROM api_keys") }
        for row in rows {
            for value in row { #expect(value.text?.contains(h.adminKey) != true) }
        }
    }

    @Test func bootstrapGeneratesOnlyOnAFirstRun() throws {
        var template = Array("/tmp/peon-key-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let store = try Store(path: dir + "/peon.db")
        let first = try store.write { tx in try APIKeys.bootstrap(in: tx, configured: nil, now: 0) }
        #expect(first?.hasPrefix("peon_") == true)
        #expect(try store.write { tx in try APIKeys.bootstrap(in: tx, configured: nil, now: 0) } == nil)
    }
}

@Suite struct ServerListTests {
    @Test func listFollowsEveryWriteDespiteTheCache() throws {
        let h = try Harness(plans: [:])
        #expect(h.send("GET", "/api/v1/servers", key: h.readKey).json == .array([]))
        let uid = try ServerUID(validating: "valheim.s1")
        try h.context.store.write { tx in
            try tx.insertServer(ServerRecord(uid: uid, description: "one", settings: [], observedState: "running", createdAt: 0), now: 0)
        }
        #expect(h.send("GET", "/api/v1/servers", key: h.readKey).json?.arrayValue?.first?["description"] == "one")
        try h.context.store.write { tx in
            var s = try #require(try tx.server(uid))
            s.description = "two"
            try tx.updateServer(s, now: 1)
        }
        #expect(h.send("GET", "/api/v1/servers", key: h.readKey).json?.arrayValue?.first?["description"] == "two")
        try h.context.store.write { tx in
            try tx.setSchedule(server: uid.description, action: .stop, time: ScheduledTime(due: 9, wire: "9"), now: 1)
        }
        #expect(h.send("GET", "/api/v1/servers", key: h.readKey).json?.arrayValue?.first?["time"] == "9")
        try h.context.store.write { tx in try tx.deleteServer(uid) }
        #expect(h.send("GET", "/api/v1/servers", key: h.readKey).json == .array([]))
    }
}

/// A client looping on an action cannot queue work without end: per-server and global caps.
@Suite struct PendingJobCapTests {
    @Test func actionsBeyondTheCapsAre429WithRetryAfter() throws {
        let h = try Harness(environment: ["PEON_MAX_PENDING_JOBS": "3", "PEON_MAX_PENDING_JOBS_TOTAL": "5"])
        // No scheduler runs the jobs; its lock held here and a heartbeat in the future let actions be queued.
        try h.context.store.write { tx in try tx.setMeta("scheduler.heartbeat", "\(WallClock.now() + 3600)") }
        try Files.makeDirectories(h.context.configuration.wakeupDir)
        let lock = try #require(try ProcessLock.tryHold(h.context.configuration.schedulerLockPath))
        defer { close(lock) }
        let create = #"{"SERVER_NAME": "x", "PASSWORD": "p", "start_later": true}"#
        #expect(h.send("PUT", "/api/v1/server/create/peontest.a?async=true", key: h.adminKey, body: create).status == 202)
        #expect(h.send("PUT", "/api/v1/server/create/peontest.b?async=true", key: h.adminKey, body: create).status == 202)
        let a = ["start", "stop", "start"].map { h.send("PUT", "/api/v1/server/\($0)/peontest.a?async=true", key: h.adminKey) }
        #expect(a.map(\.status) == [202, 202, 429])
        #expect(a[2].json?["code"] == "jobs.too_many" && a[2].headers.contains { $0.0 == "Retry-After" })
        // A repeat of the last pending job joins it instead of counting twice.
        #expect(h.send("PUT", "/api/v1/server/stop/peontest.a?async=true", key: h.adminKey).status == 202)
        #expect(h.send("PUT", "/api/v1/server/start/peontest.b?async=true", key: h.adminKey).status == 202)
        #expect(h.send("PUT", "/api/v1/server/stop/peontest.b?async=true", key: h.adminKey).json?["code"] == "jobs.too_many")
        #expect(h.send("PUT", "/api/v1/servers?async=true", key: h.adminKey).status == 429, "imports count in the total")
    }
}

/// Destroy, then erase by the uid alone (PEON's web UI destroys without a body); backups outlive
/// the server, listed and deleted by its uid.
@Suite struct DestroyedServerTests {
    let h = try! Harness()
    let uid = try! ServerUID(validating: "peontest.gone")

    /// No scheduler runs: its lock held here and a fresh heartbeat let actions be queued.
    func pretendScheduler() throws -> Int32 {
        try h.context.store.write { tx in try tx.setMeta("scheduler.heartbeat", "\(WallClock.now() + 3600)") }
        try Files.makeDirectories(h.context.configuration.wakeupDir)
        return try #require(try ProcessLock.tryHold(h.context.configuration.schedulerLockPath))
    }

    /// Plays the scheduler for one job: claims it and finishes it with `result`; answers its request.
    func runNextJob(_ result: JSON) -> ThreadHandle {
        let path = h.context.configuration.databasePath
        return ThreadHandle {
            guard let store = try? Store(path: path) else { return }
            for _ in 0..<500 {
                if let job = try? store.write({ tx in try tx.claimNextJob(now: WallClock.now()) }) {
                    try? store.write { tx in try tx.finishJob(job.id, state: .succeeded, result: result, now: WallClock.now()) }
                    return
                }
                usleep(10_000)
            }
        }
    }

    func addBackup() throws -> Int64 {
        let uid = uid
        return try h.context.store.write { tx in
            try tx.insertBackup(
                BackupRecord(
                    serverUID: uid.description, path: "peontest/gone/b.tar.zst", bytes: 1, createdAt: 0, sha256: "", format: "tar.zst"))
        }
    }

    @Test func erasingAGoneServerQueuesAnEraseOfWhatItLeft() throws {
        let lock = try pretendScheduler()
        defer { close(lock) }
        for (action, body) in [("destroy", #"{"eradicate": true}"#), ("eradicate", ""), ("eradicate", #"{"delete_backups": true}"#)] {
            let r = h.send("DELETE", "/api/v1/server/\(action)/\(uid)?async=true", key: h.adminKey, body: body)
            #expect(r.status == 202, "\(action) \(body): \(String(decoding: r.body, as: UTF8.self))")
            #expect(r.json?["kind"] == "eradicate" && r.json?["server_uid"] == .string(uid.description))
        }
        let jobs = try h.context.store.read { tx in try tx.pendingJobs(server: "peontest.gone") }
        #expect(try jobs.map { try $0.request } == [.eradicate(deleteBackups: false), .eradicate(deleteBackups: true)])
        // Without erasing there is nothing to do for a server that is gone: PEON's 404.
        let r = h.send("DELETE", "/api/v1/server/destroy/\(uid)", key: h.adminKey)
        #expect(r.status == 404 && r.json?["code"] == "server.not_found")
    }

    @Test func theEraseAnswersWhatItFound() throws {
        let lock = try pretendScheduler()
        defer { close(lock) }
        var scheduler = runNextJob(["files": true, "deleted_backups": []])
        var r = h.send("DELETE", "/api/v1/server/destroy/\(uid)", key: h.adminKey, body: #"{"eradicate": true}"#)
        scheduler.join()
        #expect(r.status == 200)
        #expect(
            String(decoding: r.body, as: UTF8.self)
                == #"{"status":"success","info":"All files for peontest.gone will be purged from the server. This may take a few moments."}"#
        )
        scheduler = runNextJob(["files": false, "deleted_backups": [7]])
        r = h.send("DELETE", "/api/v1/server/eradicate/\(uid)", key: h.adminKey, body: #"{"delete_backups": true}"#)
        scheduler.join()
        #expect(r.status == 200 && r.json?["deleted_backups"] == [7])
        // Nothing of it anywhere: 404, as for a name that never was.
        scheduler = runNextJob(["files": false, "deleted_backups": []])
        r = h.send("DELETE", "/api/v1/server/eradicate/\(uid)", key: h.adminKey)
        scheduler.join()
        #expect(r.status == 404 && r.json?["code"] == "server.not_found")
    }

    @Test(arguments: [
        #"{"eradicate": "yes"}"#, #"{"eradicate": true, "delete_backups": 1}"#, #"{"eradicate": false, "delete_backups": true}"#,
        #"{"eradicate": null}"#, #"{"delete_backups": "true"}"#, "[]", "{", "\u{0}",
    ])
    func hostileBodiesAre400(_ body: String) throws {
        for action in ["destroy", "eradicate"] {
            let r = h.send("DELETE", "/api/v1/server/\(action)/\(uid)", key: h.adminKey, body: body)
            #expect(r.status == 400 && r.json?["code"] == "request.invalid" || r.json?["code"] == "json.invalid", "\(action) \(body)")
        }
        // Backups go only with the files.
        let r = h.send("DELETE", "/api/v1/server/destroy/\(uid)", key: h.adminKey, body: #"{"delete_backups": true}"#)
        #expect(r.status == 400 && r.json?["info"] == "delete_backups needs eradicate: backups stay while the files do.")
    }

    @Test(arguments: [
        "..", "%2e%2e.x", "a;b.c", "a.%24(id)", "a.b%20c", "a.%00", "%C3%A9.x", "a.b.c/..", String(repeating: "a", count: 10_000) + ".x",
    ])
    func hostileUIDsAre4xx(_ segment: String) throws {
        let lock = try pretendScheduler()
        defer { close(lock) }
        for (method, path, body) in [
            ("DELETE", "/api/v1/server/eradicate/\(segment)", #"{"eradicate": true, "delete_backups": true}"#),
            ("DELETE", "/api/v1/server/destroy/\(segment)", #"{"eradicate": true}"#), ("GET", "/api/v1/server/backups/\(segment)", ""),
            ("DELETE", "/api/v1/server/backup/\(segment)", #"{"id": 1}"#),
        ] {
            let r = h.send(method, path, key: h.adminKey, body: body)
            #expect((400..<500).contains(r.status), "\(method) \(path.prefix(60))")
            #expect(r.json?["status"] == "error" && r.body.count < 600)
        }
        #expect(try h.context.store.read { tx in try tx.pendingJobCounts(server: "*") }.1 == 0, "no job for a hostile uid")
    }

    @Test func backupsOfAGoneServerAreListedAndDeletable() throws {
        let lock = try pretendScheduler()
        defer { close(lock) }
        #expect(h.send("GET", "/api/v1/server/backups/\(uid)", key: h.readKey).status == 404, "no server, no backups")
        let id = try addBackup()
        let listed = h.send("GET", "/api/v1/server/backups/\(uid)", key: h.readKey)
        #expect(listed.status == 200 && listed.json?.arrayValue?.map { $0["id"] } == [.number(Double(id))])
        // Deleting needs admin, as for a live server's backups.
        #expect(h.send("DELETE", "/api/v1/server/backup/\(uid)?async=true", key: h.readKey, body: #"{"id": \#(id)}"#).status == 403)
        let r = h.send("DELETE", "/api/v1/server/backup/\(uid)?async=true", key: h.adminKey, body: #"{"id": \#(id)}"#)
        #expect(r.status == 202 && r.json?["kind"] == "delete_backup")
        #expect(
            h.send("DELETE", "/api/v1/server/backup/\(uid)", key: h.adminKey, body: #"{"id": 999}"#).json?["code"] == "backup.not_found")
    }
}
