import Logging
import PeonCore
import PeonDocker
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem
import Synchronization
import Testing

@testable import PeonNode
@testable import PeonScheduler

#if canImport(Glibc)
    import Glibc
#endif

/// A platform that records calls and lets a test look at the files when the container stops;
/// server files are real (`LocalServerFiles` in the test's data dir), as on the Docker platform.
final class RecordingPlatform: ServerPlatform {
    var calls: [String] = []
    var onStop: () -> Void = {}
    var state = ObservedState.running
    let files: LocalServerFiles
    /// The node is this process, as on Docker; the game (RCON tests) is in-process on loopback.
    let node: LocalNode

    init(dataDir: String) {
        files = LocalServerFiles(dataDir: dataDir, hostDataDir: dataDir)
        node = LocalNode(
            files: files, gameHost: "127.0.0.1", engine: { () throws(DockerError) in throw .badResponse("no engine in this test") })
        node.fixedAddress = "127.0.0.1"
    }

    func ensure(_ spec: ServerSpec) throws(PlatformError) -> ServerRef {
        calls.append("ensure")
        return ServerRef("c1")
    }
    func start(_ ref: ServerRef) throws(PlatformError) {
        calls.append("start")
        state = .running
    }
    func stop(_ ref: ServerRef, graceSeconds: Int) throws(PlatformError) {
        onStop()
        calls.append("stop")
        state = .exited(code: 0, oom: false)
    }
    func remove(_ uid: ServerUID) throws(PlatformError) { calls.append("remove") }
    func observe(labels: [String]) throws(PlatformError) -> [ObservedWorkload] { [] }
    func details(_ ref: ServerRef) throws(PlatformError) -> ObservedWorkload {
        ObservedWorkload(ref: ref, uid: nil, state: state, labels: [:])
    }
    /// How long asking the node for its ports takes (a real node answers in milliseconds).
    var portsDelay = 0.0
    func takenPorts(for uid: ServerUID) throws(PlatformError) -> Set<PortKey> {
        Monotonic.sleep(portsDelay)
        return []
    }
    func imageFacts(_ image: String) throws(PlatformError) -> ImageFacts? { ImageFacts(containerType: "test", buildVersion: "1") }
    func pull(_ image: String, progress: (String) -> Void) throws(PlatformError) {}
    func imageID(_ reference: String) throws(PlatformError) -> String? { "sha256:test" }
    func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws(PlatformError) -> Bool { false }
    func pruneImages(labels: [String], keep: Set<String>) throws(PlatformError) -> Int { 0 }
    func sample(_ ref: ServerRef) throws(PlatformError) -> StatsSample { throw .notFound(ref.raw) }
    func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws(PlatformError) {}
    func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws {}
    func channel(for uid: ServerUID) throws(PlatformError) -> any NodeChannel { node }
    func channels() throws(PlatformError) -> [any NodeChannel] { [node] }
    func runningContainer(_ ref: ServerRef) throws(PlatformError) -> (channel: any NodeChannel, container: String) {
        guard state == .running else { throw .notFound(ref.raw) }
        return (node, String(repeating: "c", count: 64))
    }
}

/// JobRunner against real files and SQLite: the order of stop and delete, bind-source checks,
/// hostile manifests.
@Suite struct JobRunnerTests {
    let dataDir: String = {
        var template = Array("/tmp/peon-runner-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()
    let uid = try! ServerUID(validating: "fuzz.one")
    static let plan = #"""
        {"metadata": {"game_uid": "fuzz", "image": "peon-test-game:latest"}, "ports": [[{"PORT": ["27960", "tcp"]}]],
         "environment": {"SERVER_NAME": null}, "volumes": {"~!/data": "/data", "~!/user": "/user"}}
        """#

    func runner(_ platform: RecordingPlatform) throws -> JobRunner {
        let configuration = try Configuration(environment: ["PEON_DATA_DIR": dataDir], defaultWorkers: 1)
        let store = try Store(path: configuration.databasePath)
        try store.write { tx in
            try tx.upsertPlan(
                StoredPlan(
                    entry: PlanIndexEntry(title: "Fuzz", gameUID: uid.game, planURL: "local://fuzz"), listed: true,
                    documentText: Self.plan, source: "local"), now: 0)
            if try tx.server(uid) == nil {
                try tx.insertServer(
                    ServerRecord(
                        uid: uid, description: "", settings: [("SERVER_NAME", "x")],
                        ports: [PortSpec(name: "PORT", port: 27960, proto: .tcp)],
                        desiredState: "running", observedState: "running", containerID: "c1", createdAt: 0), now: 0)
            }
        }
        return JobRunner(store: store, platform: platform, configuration: configuration, logger: Logger(label: "test"))
    }

    var serverDir: String { dataDir + "/servers/fuzz/one" }

    /// Runners creating servers at once never choose the same ports: each looks at what is taken
    /// and saves its choice before the next looks (the scheduler's 16 runners, each with its own
    /// store and platform, as here). Without that, every one of these saw the same free ports.
    @Test func runnersCreatingAtOnceChooseDistinctPorts() throws {
        defer { try? Files.removeTree(dataDir) }
        let setup = try runner(RecordingPlatform(dataDir: dataDir))
        let uids = try (0..<6).map { try ServerUID(validating: "fuzz.p\($0)") }
        try setup.store.write { tx in
            for uid in uids {
                try tx.insertServer(
                    ServerRecord(uid: uid, description: "", settings: [("SERVER_NAME", "x")], desiredState: "running", createdAt: 0), now: 0
                )
            }
        }
        final class Failures: Sendable { let list = Mutex<[String]>([]) }
        let failures = Failures()
        let threads = uids.map { uid in
            ThreadHandle { [dataDir] in
                do {
                    let platform = RecordingPlatform(dataDir: dataDir)
                    platform.portsDelay = 0.05
                    let configuration = try Configuration(environment: ["PEON_DATA_DIR": dataDir], defaultWorkers: 1)
                    let runner = JobRunner(
                        store: try Store(path: configuration.databasePath), platform: platform, configuration: configuration,
                        logger: Logger(label: "test"))
                    try runner.create(uid, start: false, noclean: true)
                } catch {
                    failures.list.withLock { $0.append("\(uid): \(error)") }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failures.list.withLock { $0 } == [])
        let ports = try setup.store.read { tx in try uids.map { try tx.server($0)?.ports.map(\.port) ?? [] } }
        #expect(Set(ports.flatMap { $0 }).count == uids.count, "\(ports)")
    }

    @Test func reinitStopsTheContainerBeforeDeletingItsFiles() throws {
        defer { try? Files.removeTree(dataDir) }
        try Files.makeDirectories(serverDir + "/data/world")
        try Files.write(serverDir + "/data/world/save", [1])
        try Files.makeDirectories(serverDir + "/actions")
        try Files.write(serverDir + "/actions/.update", [1])
        let platform = RecordingPlatform(dataDir: dataDir)
        var filesAtStop: [Bool] = []
        platform.onStop = { [serverDir] in
            filesAtStop.append(Files.kind(serverDir + "/data/world/save") == .file && Files.kind(serverDir + "/actions/.update") == .file)
        }
        try runner(platform).update(uid, mode: .reinit)
        #expect(filesAtStop.first == true, "the files were still there when the container stopped")
        #expect(Files.list(serverDir + "/data").isEmpty && Files.kind(serverDir + "/actions/.update") == .missing)
        #expect(Files.kind(serverDir + "/data") == .directory, "the bind source itself stays")
        #expect(platform.calls.first == "stop" && platform.calls.last == "start")
    }

    @Test func aSymlinkedBindSourceRefusesTheStart() throws {
        defer { try? Files.removeTree(dataDir) }
        try Files.makeDirectories(serverDir + "/data")
        try Files.makeDirectories(dataDir + "/outside")
        // What a container with the whole folder mounted could have left behind.
        symlink(dataDir + "/outside", serverDir + "/user")
        let platform = RecordingPlatform(dataDir: dataDir)
        platform.state = .exited(code: 0, oom: false)
        #expect(throws: PlatformError.self) { try runner(platform).start(uid) }
        #expect(!platform.calls.contains("start"), "Docker never got to follow the link")
        #expect(Files.kind(serverDir + "/user") != .directory)
    }

    @Test func aMissingBindSourceIsMadeForTheGame() throws {
        defer { try? Files.removeTree(dataDir) }
        let platform = RecordingPlatform(dataDir: dataDir)
        platform.state = .exited(code: 0, oom: false)
        try runner(platform).start(uid)
        #expect(platform.calls.contains("start"))
        var st = stat()
        #expect(lstat(serverDir + "/user", &st) == 0 && st.st_uid == 1000 && (st.st_mode & S_IFMT) == S_IFDIR)
    }

    @Test func importRefusesHostileManifestsAndKeepsGoing() throws {
        defer { try? Files.removeTree(dataDir) }
        let platform = RecordingPlatform(dataDir: dataDir)
        let runner = try runner(platform)
        try runner.store.write { tx in try tx.deleteServer(uid) }
        for (name, port) in [("bad", "1e19"), ("neg", "-1"), ("good", "27961")] {
            try Files.makeDirectories(dataDir + "/servers/fuzz/" + name)
            let manifest =
                #"{"uid": "fuzz.\#(name)", "settings": {"SERVER_NAME": "x"}, "ports": [{"name": "PORT", "port": \#(port), "proto": "tcp"}]}"#
            try Files.write(dataDir + "/servers/fuzz/\(name)/peon-server.json", Array(manifest.utf8))
        }
        // A manifest that is a FIFO must not stall the scheduler.
        try Files.makeDirectories(dataDir + "/servers/fuzz/fifo")
        #expect(mkfifo(dataDir + "/servers/fuzz/fifo/peon-server.json", 0o644) == 0)
        try runner.adopt()
        let adopted = try runner.store.read { tx in try tx.servers() }.map(\.uid.name)
        #expect(adopted == ["good"])
    }

    /// Retention through the runner, real SQLite and files, an injected clock: the policy's picks
    /// stay, and so does the backup a queued restore names; the rest go, file and row.
    @Test func retentionKeepsThePolicyAndWhatAQueuedRestoreNames() throws {
        let store = try runner(RecordingPlatform(dataDir: dataDir)).store
        let configuration = try Configuration(environment: ["PEON_DATA_DIR": dataDir], defaultWorkers: 1)
        let now: Int64 = 1_795_564_800 + 12 * 3_600  // Wednesday 2026-11-25 12:00 UTC
        let runner = JobRunner(
            store: store, platform: RecordingPlatform(dataDir: dataDir), configuration: configuration, logger: Logger(label: "test"),
            clock: { now })
        try Files.makeDirectories(configuration.backupDir + "/fuzz/one")
        // One backup a day at 06:00 UTC for ten days, newest first.
        let ids = try (0..<10).map { k in
            let path = "fuzz/one/b\(k).tar.zst"
            let fd = open(configuration.backupDir + "/" + path, O_WRONLY | O_CREAT, 0o644)
            close(fd)
            return try store.write { tx in
                try tx.insertBackup(
                    BackupRecord(
                        serverUID: uid.description, path: path, bytes: 1, createdAt: now - Int64(k) * 86_400 - 6 * 3_600, sha256: "",
                        format: "tar.zst"))
            }
        }
        try store.write { tx in
            try tx.setBackupPolicy(server: uid.description, BackupPolicy(keepLast: 1, keepDaily: 3), now: now)
            _ = try tx.enqueueJob(server: uid.description, .restore(backup: ids[9]), now: now)
        }
        let deleted = try runner.applyRetention(uid)
        #expect(deleted == Array(ids[3..<9].reversed()))
        #expect(try store.read { tx in try tx.backups(server: uid.description) }.map(\.id) == [ids[0], ids[1], ids[2], ids[9]])
        for (k, id) in ids.enumerated() {
            #expect(access(configuration.backupDir + "/fuzz/one/b\(k).tar.zst", F_OK) == (deleted.contains(id) ? -1 : 0))
        }
    }

    /// PEON's web UI destroys without erasing; erasing later finds the folder by the uid alone
    /// (the row is gone) and removes it; backups stay unless asked, then go, file and row.
    @Test func aDestroyedServersFolderIsErasedByItsUIDAndItsBackupsOnlyWhenAsked() throws {
        defer { try? Files.removeTree(dataDir) }
        let platform = RecordingPlatform(dataDir: dataDir)
        let runner = try runner(platform)
        try Files.makeDirectories(serverDir + "/user/world")
        try Files.write(serverDir + "/user/world/map.txt", [1])
        let backupDir = runner.configuration.backupDir + "/fuzz/one"
        try Files.makeDirectories(backupDir)
        try Files.write(backupDir + "/b.tar.zst", [2])
        let id = try runner.store.write { tx in
            try tx.insertBackup(
                BackupRecord(serverUID: uid.description, path: "fuzz/one/b.tar.zst", bytes: 1, createdAt: 0, sha256: "", format: "tar.zst"))
        }

        #expect(try runner.destroy(uid, eradicate: false, deleteBackups: false) == nil)
        #expect(try runner.store.read { tx in try tx.server(uid) } == nil)
        #expect(Files.kind(serverDir + "/user/world/map.txt") == .file, "destroy keeps the files")

        let erased = try runner.eraseLeftovers(uid, deleteBackups: false)
        #expect(erased == ["files": true, "deleted_backups": []])
        #expect(Files.kind(serverDir) == .missing)
        #expect(try runner.store.read { tx in try tx.backups(server: uid.description) }.map(\.id) == [id], "backups are kept")
        #expect(Files.kind(backupDir + "/b.tar.zst") == .file)

        // Nothing left but the backups: asked, they go too.
        let again = try runner.eraseLeftovers(uid, deleteBackups: true)
        #expect(again == ["files": false, "deleted_backups": [.number(Double(id))]])
        #expect(try runner.store.read { tx in try tx.backups(server: uid.description) }.isEmpty)
        #expect(Files.kind(backupDir + "/b.tar.zst") == .missing)
        #expect(try runner.eraseLeftovers(uid, deleteBackups: true) == ["files": false, "deleted_backups": []])
    }

    /// A server made again with the name between the request and the job owns the folder now.
    @Test func erasingLeftoversRefusesAServerMadeAgain() throws {
        defer { try? Files.removeTree(dataDir) }
        let runner = try runner(RecordingPlatform(dataDir: dataDir))
        try Files.makeDirectories(serverDir + "/user")
        #expect(throws: CodedFailure.self) { try runner.eraseLeftovers(uid, deleteBackups: true) }
        #expect(Files.kind(serverDir + "/user") == .directory)
        #expect(try runner.store.read { tx in try tx.server(uid) } != nil)
    }

    /// What an ended restore left: staging and replaced folders go, but a folder set aside whose
    /// live folder is missing (ended between the two renames) is put back.
    @Test func leftoversOfAnEndedRestoreAreRemovedOrPutBack() throws {
        let dir = dataDir + "/leftovers"
        for path in ["/.old-user-3-ab/world", "/.restore-3/user", "/.old-config-2-cd", "/config"] {
            try Files.makeDirectories(dir + path)
        }
        close(open(dir + "/.old-user-3-ab/world/map.txt", O_WRONLY | O_CREAT, 0o644))
        ServerRestore.removeLeftovers(in: dir)
        #expect(Files.list(dir).sorted() == ["config", "user"])
        #expect(access(dir + "/user/world/map.txt", F_OK) == 0)
    }
}
