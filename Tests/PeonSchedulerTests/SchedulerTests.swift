import Logging
import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem
import PeonTestSupport
import Testing

@testable import PeonScheduler

#if canImport(Glibc)
    import Glibc
#endif

/// The scheduler's crash handling on the in-memory platform, at a fixed time: no Docker, no clock.
@Suite struct SchedulerTests {
    let dataDir: String = {
        var template = Array("/tmp/peon-scheduler-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()
    let uid = try! ServerUID(validating: "fuzz.one")
    static let now: Int64 = 2_000_000_000

    func world() throws -> (Scheduler, Store, FakePlatform, ServerRef) {
        let configuration = try Configuration(environment: ["PEON_DATA_DIR": dataDir], defaultWorkers: 1)
        let store = try Store(path: configuration.databasePath)
        let platform = FakePlatform()
        platform.images.insert("peon-test-game:latest")
        let plan = try Plan(document: JSON.parse(Array(JobRunnerTests.plan.utf8)), expectedGameUID: uid.game)
        let ref = try platform.ensure(
            ServerSpec(
                uid: uid, plan: plan, settings: [("SERVER_NAME", "x")], ports: [], directory: "/fake", image: "peon-test-game:latest"))
        try platform.start(ref)
        try store.write { tx in
            try tx.upsertPlan(
                StoredPlan(
                    entry: PlanIndexEntry(title: "Fuzz", gameUID: uid.game, planURL: "local://fuzz"), listed: true,
                    documentText: JobRunnerTests.plan, source: "local"), now: 0)
            try tx.insertServer(
                ServerRecord(
                    uid: uid, description: "", settings: [("SERVER_NAME", "x")], ports: [], desiredState: "running",
                    observedState: "running",
                    containerID: ref.raw, createdAt: 0), now: 0)
        }
        let scheduler = Scheduler(configuration: configuration, logger: Logger(label: "test"), clock: { Self.now }) { FakePlatform() }
        return (scheduler, store, platform, ref)
    }

    @Test func anExitNobodySawIsACrashRestartedByThePolicy() throws {
        defer { try? Files.removeTree(dataDir) }
        let (scheduler, store, platform, _) = try world()
        platform.exit(uid, code: 1)
        try scheduler.reconcile(store: store, platform: platform)
        let (jobs, crashes, server) = try store.read { tx in
            (try tx.pendingJobs(server: "fuzz.one"), try tx.crashTimes(server: "fuzz.one", since: 0), try tx.server(uid))
        }
        #expect(jobs.map(\.kind) == [.start])
        #expect(crashes == [Self.now])
        #expect(server?.observedState == "exited" && server?.desiredState == "running")
        // Seen again by the next round (or the event stream): handled once.
        try scheduler.reconcile(store: store, platform: platform)
        #expect(try store.read { tx in try tx.crashTimes(server: "fuzz.one", since: 0) }.count == 1)
    }

    @Test func theEventStreamAppliesThePolicyAndACleanExitIsAStop() throws {
        defer { try? Files.removeTree(dataDir) }
        let (scheduler, store, platform, _) = try world()
        platform.exit(uid, code: 0)
        try platform.followEvents(keepGoing: { true }) { event in
            scheduler.handle(event, store: store, platform: platform)
            return true
        }
        let server = try store.read { tx in try tx.server(uid) }
        #expect(server?.desiredState == "stopped" && server?.observedState == "exited")
        #expect(try store.read { tx in try tx.crashTimes(server: "fuzz.one", since: 0) }.isEmpty)
    }
}
