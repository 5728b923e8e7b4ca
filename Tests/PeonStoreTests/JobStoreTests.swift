import PeonCore
import PeonJSON
import PeonStore
import Testing

@Suite struct JobStoreTests {
    let temporary = TemporaryDirectory()

    func store() throws -> Store { try Store(path: temporary.path + "/peon.db") }

    @Test func jobsOfOneServerRunOneAtATimeInOrder() throws {
        let store = try store()
        let (a1, a2, b1) = try store.write { tx in
            (
                try tx.enqueueJob(server: "g.a", .create(start: false, noclean: false), now: 1),
                try tx.enqueueJob(server: "g.a", .start, now: 1),
                try tx.enqueueJob(server: "g.b", .stop(reason: nil), now: 1)
            )
        }
        let first = try store.write { tx in try tx.claimNextJob(now: 2) }
        let second = try store.write { tx in try tx.claimNextJob(now: 2) }
        #expect(first?.id == a1 && second?.id == b1, "g.a's second job waits for its first")
        #expect(try store.write { tx in try tx.claimNextJob(now: 2) } == nil)
        try store.write { tx in try tx.finishJob(a1, state: .succeeded, now: 3) }
        #expect(try store.write { tx in try tx.claimNextJob(now: 4) }?.id == a2)
        #expect(try store.read { tx in try tx.job(a1) }?.state == .succeeded)
    }

    /// A file read waits for no backup of its server, and holds up none of its actions; its bytes
    /// go with the job and are taken once.
    @Test func fileJobsRunBesideTheServersActions() throws {
        let store = try store()
        let config = try ServerFilePath(validating: "config/server.cfg")
        let (backup, start, write, read) = try store.write { tx in
            let ids = (
                try tx.enqueueJob(server: "g.a", .backup(.tarZstd), now: 1),
                try tx.enqueueJob(server: "g.a", .start, now: 1),
                try tx.enqueueJob(server: "g.a", .writeFile(path: config), now: 1),
                try tx.enqueueJob(server: "g.a", .readFile(path: config), now: 1)
            )
            try tx.setJobPayload(ids.2, [1, 2, 3])
            return ids
        }
        #expect(try store.write { tx in try tx.claimNextJob(now: 2) }?.id == backup)
        #expect(try store.write { tx in try tx.claimNextJob(now: 2, lane: .files) }?.id == write, "a write runs while the backup does")
        #expect(try store.write { tx in try tx.claimNextJob(now: 2, lane: .files) }?.id == read)
        #expect(try store.write { tx in try tx.claimNextJob(now: 2, lane: .files) } == nil)
        try store.write { tx in try tx.finishJob(backup, state: .succeeded, now: 3) }
        #expect(try store.write { tx in try tx.claimNextJob(now: 3) }?.id == start, "running file jobs hold up no action")
        #expect(try store.write { tx in try tx.jobPayload(write, take: true) } == [1, 2, 3])
        #expect(try store.read { tx in try tx.jobPayload(write) } == nil)
        // Bytes nobody took go with retention, ten minutes after their job ended.
        try store.write { tx in
            try tx.setJobPayload(read, [4])
            try tx.finishJob(read, state: .succeeded, now: 3)
            try tx.prune(Retention(), now: 3 + 601)
        }
        #expect(try store.read { tx in try tx.jobPayload(read) } == nil)
    }

    @Test func interruptedJobsAreRequeuedNotLost() throws {
        let store = try store()
        let id = try store.write { tx in try tx.enqueueJob(server: "g.a", .create(start: false, noclean: false), now: 1) }
        _ = try store.write { tx in try tx.claimNextJob(now: 2) }
        #expect(try store.write { tx in try tx.requeueInterruptedJobs(maximumAttempts: 2, now: 3) }.requeued == 1)
        let again = try store.write { tx in try tx.claimNextJob(now: 3) }
        #expect(again?.id == id && again?.attempts == 2)
    }

    @Test func aJobInterruptedTwiceFailsWithTheReason() throws {
        let store = try store()
        let id = try store.write { tx in try tx.enqueueJob(server: "g.a", .restart, now: 1) }
        let other = try store.write { tx in try tx.enqueueJob(server: "g.b", .start, now: 1) }
        for now in Int64(2)...3 {
            #expect(try store.write { tx in try tx.claimNextJob(now: now) }?.id == id)
            let (requeued, failed) = try store.write { tx in try tx.requeueInterruptedJobs(maximumAttempts: 2, now: now) }
            #expect(requeued == (now == 2 ? 1 : 0) && failed.map(\.id) == (now == 2 ? [] : [id]))
        }
        let job = try #require(try store.read { tx in try tx.job(id) })
        #expect(job.state == .failed && job.attempts == 2 && job.finishedAt == 3)
        #expect(job.error == "The scheduler died while running this job 2 times; it is not retried.")
        #expect(try store.write { tx in try tx.claimNextJob(now: 4) }?.id == other, "the queue moves on")
    }

    @Test func aDeferredJobWaitsAndKeepsItsAttempts() throws {
        let store = try store()
        let id = try store.write { tx in try tx.enqueueJob(server: "g.a", .start, now: 1) }
        _ = try store.write { tx in try tx.claimNextJob(now: 2) }
        try store.write { tx in try tx.deferJob(id, seconds: 2, now: 2) }
        #expect(try store.write { tx in try tx.claimNextJob(now: 3) } == nil)
        let again = try store.write { tx in try tx.claimNextJob(now: 4) }
        #expect(again?.id == id && again?.attempts == 1)
    }

    @Test func notBeforeDelaysAJob() throws {
        let store = try store()
        try store.write { tx in try tx.enqueueJob(server: "g.a", .start, notBefore: 10, now: 1) }
        #expect(try store.write { tx in try tx.claimNextJob(now: 5) } == nil)
        #expect(try store.write { tx in try tx.claimNextJob(now: 10) } != nil)
    }

    @Test func schedulesKeepTheWireTimeAndFireOnce() throws {
        let store = try store()
        try store.write { tx in
            for uid in ["g.a", "g.b"] {
                try tx.insertServer(ServerRecord(uid: try ServerUID(validating: uid), description: "", settings: [], createdAt: 0), now: 0)
            }
            try tx.setSchedule(server: "g.a", action: .stop, time: ScheduledTime(due: 100, wire: "100"), now: 1)
            try tx.setSchedule(server: "g.b", action: .stop, time: ScheduledTime(due: 50, wire: .int(50)), now: 1)
        }
        #expect(try store.read { tx in try tx.scheduledTime(server: "g.a") } == "100")
        #expect(try store.read { tx in try tx.nextScheduleDue() } == 50)
        #expect(try store.write { tx in try tx.takeDueSchedules(now: 60) }.map(\.server) == ["g.b"])
        #expect(try store.write { tx in try tx.takeDueSchedules(now: 60) }.isEmpty)
        try store.write { tx in try tx.setSchedule(server: "g.a", action: .stop, time: nil, now: 2) }
        #expect(try store.read { tx in try tx.scheduledTime(server: "g.a") } == nil)
    }

    @Test func serversRoundTrip() throws {
        let store = try store()
        let uid = try ServerUID(validating: "valheim.s1")
        var record = ServerRecord(
            uid: uid, description: "Vikings", settings: [("SERVER_NAME", "My \"Srv\"")],
            ports: [PortSpec(name: "PORT", port: 2456, proto: .udp)],
            createdAt: 1)
        try store.write { tx in try tx.insertServer(record, now: 1) }
        #expect(throws: StoreError.self) { try store.write { tx in try tx.insertServer(record, now: 1) } }
        record.observedState = "running"
        record.containerID = "abc"
        try store.write { tx in try tx.updateServer(record, now: 2) }
        #expect(try store.read { tx in try tx.server(uid) } == record)
        #expect(try store.read { tx in try tx.servers() }.map(\.uid) == [uid])
        try store.write { tx in try tx.deleteServer(uid) }
        #expect(try store.read { tx in try tx.server(uid) } == nil)
    }
}
