import PeonCore
import PeonJSON
import PeonStore
import PeonSystem
import Testing

/// History is pruned by age and by count; unfinished jobs never are.
@Suite struct RetentionTests {
    let temporary = TemporaryDirectory()

    func store() throws -> Store { try Store(path: temporary.path + "/peon.db") }

    @Test func pruneDeletesOldHistoryAndKeepsTheNewestRows() throws {
        let store = try store()
        let day: Int64 = 86400
        let now: Int64 = 1_800_000_000
        try store.write { tx in
            for at in [now - 40 * day, now - 35 * day, now - 2 * day, now] {
                let id = try tx.enqueueJob(server: "g.a", .start, now: at)
                try tx.finishJob(id, state: .succeeded, now: at)
                try tx.recordCrash(server: "g.a", at: at, exitCode: 1, oomKilled: false)
                try tx.appendAudit(
                    AuditEntry(
                        at: WallClock.iso8601(at), keyID: "key_x", clientIP: "127.0.0.1", requestID: "", method: "PUT", path: "/x",
                        status: 200,
                        result: "ok"))
                try tx.insertStats(
                    server: "g.a", StatsRecord(at: at, cpuPercent: 1, memory: 1, memoryLimit: 2, networkRx: 0, networkTx: 0, uptime: 0))
            }
            // An old job still queued is work, not history.
            try tx.enqueueJob(server: "g.b", .start, now: now - 50 * day)
        }
        let removed = try store.write { tx in try tx.prune(Retention(days: 30, rows: 100, statsHours: 24), now: now) }
        #expect(removed == 2 + 2 + 2 + 3)
        let counts = try store.read { tx in
            try ["jobs", "crashes", "audit", "stats"].map { try tx.query("SELECT count(*) FROM \($0)").first?.first?.integer ?? -1 }
        }
        #expect(counts == [3, 2, 2, 1])
        #expect(try store.read { tx in try tx.pendingJobs(server: "g.b") }.count == 1)

        // By count: only the newest row of each table stays.
        try store.write { tx in try tx.prune(Retention(days: 30, rows: 1, statsHours: 24), now: now) }
        let left = try store.read { tx in
            try ["crashes", "audit", "stats"].map { try tx.query("SELECT count(*) FROM \($0)").first?.first?.integer ?? -1 }
        }
        #expect(left == [1, 1, 1])
        #expect(try store.read { tx in try tx.query("SELECT count(*) FROM jobs WHERE state = 'succeeded'") }.first?.first?.integer == 1)
        #expect(try store.read { tx in try tx.pendingJobs(server: "g.b") }.count == 1)
    }

    @Test func pendingJobCountsPerServerAndInTotal() throws {
        let store = try store()
        try store.write { tx in
            try tx.enqueueJob(server: "g.a", .start, now: 1)
            try tx.enqueueJob(server: "g.a", .stop(reason: nil), now: 1)
            let done = try tx.enqueueJob(server: "g.a", .start, now: 1)
            try tx.finishJob(done, state: .failed, now: 2)
            try tx.enqueueJob(server: "g.b", .start, now: 1)
        }
        let counts = try store.read { tx in try tx.pendingJobCounts(server: "g.a") }
        #expect(counts.server == 2 && counts.total == 3)
    }

    @Test func finishedWebhookDeliveriesArePrunedPendingOnesKept() throws {
        let store = try store()
        let day: Int64 = 86400
        let now: Int64 = 1_800_000_000
        try store.write { tx in
            try tx.insertWebhook(id: "wh_000000000001", url: "https://e.com/", events: [], server: nil, secret: "s", now: 0)
            for at in [now - 40 * day, now - 39 * day, now] { try tx.emitEvent(.crashed, server: "g.a", now: at) }
            let due = try tx.dueDeliveries(now: now, limit: 10)
            #expect(due.count == 3 && due[0].secret == "s")
            try tx.recordDelivery(due[0].0.id, status: 200, error: nil, delivered: true, retryAt: nil, now: now)
            try tx.recordDelivery(due[2].0.id, status: 500, error: "x", delivered: false, retryAt: nil, now: now)
        }
        try store.write { tx in _ = try tx.prune(Retention(days: 30, rows: 100, statsHours: 24), now: now) }
        let left = try store.read { tx in try tx.deliveries(webhook: "wh_000000000001", limit: 10) }
        // The old delivered one goes; the old pending one stays (still work); the recent failed one stays.
        #expect(left.map(\.state) == ["failed", "pending"])
    }

    /// The senders' view of the outbox: one row per hook with due work (oldest first), so a dead
    /// hook's backlog never hides another hook; each hook's own due deliveries in order.
    @Test func dueWorkIsListedPerHook() throws {
        let store = try store()
        let now: Int64 = 1_800_000_000
        try store.write { tx in
            try tx.insertWebhook(id: "wh_00000000000a", url: "https://a.example/", events: [], server: "g.a", secret: "s", now: 0)
            try tx.insertWebhook(id: "wh_00000000000b", url: "https://b.example/", events: [], server: "g.b", secret: "s", now: 0)
            for at in 0..<100 { try tx.emitEvent(.crashed, server: "g.a", now: now - 200 + Int64(at)) }
            try tx.emitEvent(.crashed, server: "g.b", now: now - 50)
        }
        let (hooks, first, ofB) = try store.read { tx in
            (
                try tx.hooksWithDueDeliveries(now: now, limit: 2), try tx.dueDeliveries(now: now, limit: 2, webhook: "wh_00000000000a"),
                try tx.dueDeliveries(now: now, limit: 10, webhook: "wh_00000000000b")
            )
        }
        #expect(hooks == ["wh_00000000000a", "wh_00000000000b"])
        #expect(first.map(\.0.createdAt) == [now - 200, now - 199] && first.allSatisfy { $0.0.webhookID == "wh_00000000000a" })
        #expect(ofB.count == 1 && ofB[0].url == "https://b.example/")
        #expect(try store.read { tx in try tx.hooksWithDueDeliveries(now: now - 201, limit: 10) }.isEmpty)
    }
}
