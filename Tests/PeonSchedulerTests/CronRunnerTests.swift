import Logging
import PeonCore
import PeonJSON
import PeonStore
import PeonSystem
import Testing

@testable import PeonScheduler

#if canImport(Glibc)
    import Glibc
#endif

/// Firing cron schedules in the tick's transaction: the API's jobs, the missed-run rule, and
/// actions without a route recorded as failed.
@Suite struct CronRunnerTests {
    let dataDir: String = {
        var template = Array("/tmp/peon-cron-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    @Test func dueSchedulesFireSkipOrFail() throws {
        defer { try? Files.removeTree(dataDir) }
        let configuration = try Configuration(environment: ["PEON_DATA_DIR": dataDir], defaultWorkers: 1)
        let scheduler = Scheduler(
            configuration: configuration, logger: Logger(label: "test"),
            makePlatform: { throw StoreError.busy })
        let store = try Store(path: configuration.databasePath)
        let hour: Int64 = 1_800_000_000 - 1_800_000_000 % 3600
        let now = hour + 600
        let ids = try store.write { tx in
            try tx.insertServer(ServerRecord(uid: ServerUID(validating: "valheim.a"), description: "", settings: [], createdAt: 0), now: 0)
            func add(_ action: String, _ due: Int64, command: String? = nil) throws -> Int64 {
                try tx.insertCronSchedule(
                    server: "valheim.a", cron: "0 * * * *", tz: "UTC", action: action, command: command, nextRun: due, now: 0)
            }
            return [
                try add("start", hour),  // late by 10 minutes of an hour: fires
                try add("update", hour - 3600),  // late by more than its interval: skipped
                try add("command", hour, command: "say hi"),  // typed into the console
                try add("stop", hour + 3600),  // not due
            ]
        }
        var zones = ZoneCache()
        try store.write { tx in try scheduler.fireCronSchedules(in: tx, now: now, zones: &zones) }
        let records = try store.read { tx in try ids.map { try #require(try tx.cronSchedule($0)) } }
        #expect(records.map(\.lastResult) == ["queued", "skipped", "queued", nil])
        #expect(records.map(\.nextRun) == [hour + 3600, hour + 3600, hour + 3600, hour + 3600])
        let jobs = try store.read { tx in try tx.pendingJobs(server: "valheim.a") }
        #expect(jobs.map(\.kind) == [.start, .console] && records[0].lastJob == jobs[0].id)
        #expect(jobs[1].arguments["command"] == "say hi")
        #expect(try store.read { tx in try tx.server(ServerUID(validating: "valheim.a"))?.desiredState } == "running")
        // Firing again at the same instant does nothing: every next run is in the future.
        try store.write { tx in try scheduler.fireCronSchedules(in: tx, now: now, zones: &zones) }
        #expect(try store.read { tx in try tx.pendingJobs(server: "valheim.a") }.count == 2)
    }
}
