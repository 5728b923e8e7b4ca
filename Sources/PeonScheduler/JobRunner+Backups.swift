import Crypto
import PeonArchive
import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Backups: the server's `actions`, `config` and `user` (never `data`, the game install) archived
/// with libarchive, checksummed, verified after writing, restored atomically per folder.
extension JobRunner {
    static let backupFolders = ["actions", "config", "user"]

    /// The server's folder on this host: backups read and write it directly, so they need the
    /// Docker platform (on Swarm the folder lives on its node; not supported yet).
    func localDirectory(_ uid: ServerUID) throws -> String {
        guard configuration.platform == .docker else {
            throw DomainError.invalid(field: "platform", reason: "backups need PEON_PLATFORM=docker for now")
        }
        return configuration.serversDir + "/" + uid.relativeDirectory
    }

    /// Makes a backup; the job's result names it (`{"id"}`). A running server is made consistent as
    /// its plan says: its save command first, or a stop and a start around the copy.
    func backup(_ uid: ServerUID, format: ArchiveWriter.Format) throws -> JSON {
        let home = try localDirectory(uid)
        let plan = try plan(uid.game)
        let server = try record(uid)
        let running = server.containerID.flatMap { try? platform.details(ServerRef($0)) }?.state == .running
        var restart = false
        if running, let id = server.containerID {
            switch plan.backup {
            case .saveCommand(let command):
                if let rcon = plan.rcon {
                    _ = try? rconCommand(server, containerID: id, plan: plan, rcon: rcon, command: command)
                } else if let console = platform as? any ConsoleInput {
                    try? console.sendLine(id, command)
                    Monotonic.sleep(2)  // games answer a save command within a second or two
                }
            case .stop:
                try stop(uid, keepDesired: true)
                restart = true
            case .live:
                break
            }
        }
        defer { if restart { try? start(uid) } }
        progress?.enter(.building)
        let folder = configuration.backupDir + "/" + uid.relativeDirectory
        try Files.makeDirectories(folder, mode: 0o750)
        // API workers may run as another user of the data dir's group: they stream save downloads.
        let group = dataGroup()
        for path in [configuration.backupDir, configuration.backupDir + "/" + uid.game.rawValue, folder] {
            if let group { try? Files.setGroup(path, group, mode: 0o750) }
        }
        let name = "\(uid)-\(Self.stamp(WallClock.now()))-\(Self.randomHex(4)).\(format.rawValue)"
        let partial = folder + "/." + name + ".partial"
        let final = folder + "/" + name
        do {
            try ArchiveWriter.write(root: home, folders: Self.backupFolders, to: partial, format: format)
            try ArchiveExtractor.verify(file: partial)
            try Files.rename(partial, to: final)
        } catch {
            unlink(partial)
            throw error
        }
        let (digest, size) = try Self.sha256(ofFile: final)
        if let group { try? Files.setGroup(final, group, mode: 0o640) }
        let record = BackupRecord(
            serverUID: uid.description, path: uid.relativeDirectory + "/" + name, bytes: size, createdAt: clock(), sha256: digest,
            format: format.rawValue)
        let id = try store.write { tx in try tx.insertBackup(record) }
        try applyRetention(uid)
        return ["id": .number(Double(id))]
    }

    /// Puts a backup's folders back. The archive is read once: extracted into a fresh staging
    /// folder (links, devices, absolute paths and `..` refuse it) while a second thread checksums
    /// the very bytes extracted; the server keeps running meanwhile. A checksum that does not match
    /// (or a refused archive) discards the staging folder and changes nothing. Only then is the
    /// server stopped, each folder swapped in by rename and the server started again if it should
    /// run; the previous folders are deleted after that, off the job's path.
    func restore(_ uid: ServerUID, backup id: Int64) throws {
        guard let backup = try store.read({ tx in try tx.backup(id, server: uid.description) }) else {
            throw DomainError.notFound(kind: "backup", id: "\(id)")
        }
        let archive = configuration.backupDir + "/" + backup.path
        let dir = try localDirectory(uid)
        Self.removeLeftovers(in: dir)
        let staging = ".restore-\(id)"
        let checksum = Checksum()
        var failure: (any Error)?
        do {
            try ArchiveExtractor.extract(
                file: archive, into: dir + "/" + staging, limits: ArchiveLimits(maximumEntries: 1_000_000, maximumBytes: 1 << 40),
                observe: { checksum.update($0) })
        } catch {
            failure = error
        }
        let (digest, size) = checksum.finalize()
        if let failure, size == 0 {  // not read at all (missing, unreadable): no checksum to compare
            try? Files.removeTree(staging, in: dir)
            throw failure
        }
        guard digest == backup.sha256 else {
            try? Files.removeTree(staging, in: dir)
            throw DomainError.invalid(field: "id", reason: "backup \(id) does not match its checksum: it changed since it was made")
        }
        if let failure {
            try? Files.removeTree(staging, in: dir)
            throw failure
        }
        let folders = Self.backupFolders.filter { Files.kind(dir + "/" + staging + "/" + $0) == .directory }
        var old: [String] = []
        do {
            for folder in folders { try Files.chownTree(dir + "/" + staging + "/" + folder, uid: 1000, gid: 1000) }
        } catch {
            try? Files.removeTree(staging, in: dir)
            throw error
        }
        let wasRunning = try record(uid).desiredState == "running"
        do {
            try stop(uid, keepDesired: true)
            for folder in folders {
                let aside = ".old-\(folder)-\(id)-\(Self.randomHex(4))"
                if Files.kind(dir + "/" + folder) != .missing {
                    try Files.rename(dir + "/" + folder, to: dir + "/" + aside)
                    old.append(aside)
                }
                try Files.rename(dir + "/" + staging + "/" + folder, to: dir + "/" + folder)
            }
        } catch {
            // A folder set aside but not replaced goes back (the ones swapped before stay restored).
            for folder in folders where Files.kind(dir + "/" + folder) == .missing {
                if let aside = old.first(where: { $0.hasPrefix(".old-\(folder)-") }) {
                    try? Files.rename(dir + "/" + aside, to: dir + "/" + folder)
                }
            }
            try? Files.removeTree(staging, in: dir)
            if wasRunning { try? start(uid) }
            throw error
        }
        try Files.removeTree(staging, in: dir)
        defer {
            // The replaced folders are no longer the server's: deleting them (a big world takes a
            // while) need not hold the job. A scheduler that ends first leaves them for the next
            // restore's `removeLeftovers`.
            if !old.isEmpty { ThreadHandle.detach { [old] in for name in old { try? Files.removeTree(name, in: dir) } } }
        }
        if wasRunning { try start(uid) }
    }

    /// Staging and replaced folders an interrupted restore left in the server's folder. A folder
    /// set aside whose live folder is missing (the scheduler ended between the two renames) is
    /// put back, not deleted.
    static func removeLeftovers(in dir: String) {
        for name in Files.list(dir) where name.hasPrefix(".restore-") || name.hasPrefix(".old-") {
            if let folder = backupFolders.first(where: { name.hasPrefix(".old-\($0)-") }), Files.kind(dir + "/" + folder) == .missing,
                (try? Files.rename(dir + "/" + name, to: dir + "/" + folder)) != nil
            {
                continue
            }
            try? Files.removeTree(name, in: dir)
        }
    }

    func deleteBackup(_ uid: ServerUID, id: Int64) throws {
        guard let backup = try store.read({ tx in try tx.backup(id, server: uid.description) }) else {
            throw DomainError.notFound(kind: "backup", id: "\(id)")
        }
        unlink(configuration.backupDir + "/" + backup.path)
        try store.write { tx in try tx.deleteBackup(id) }
    }

    /// The server's retention policy: its own, or the newest `PEON_BACKUP_KEEP`.
    static func backupPolicy(_ tx: Transaction, server: String, configuration: Configuration) throws -> BackupPolicy {
        try tx.backupPolicy(server: server) ?? BackupPolicy(keepLast: configuration.backupKeep)
    }

    /// Removes (file and row) the backups the server's policy does not keep (`BackupRetention`);
    /// answers their ids. It runs inside one of the server's jobs, and a server's jobs run one at a
    /// time, so no restore of this server is running meanwhile; the backups that queued restores
    /// name are kept as well.
    @discardableResult
    func applyRetention(_ uid: ServerUID) throws -> [Int64] {
        let (all, policy, protected) = try store.read { tx in
            let restores = try tx.pendingJobs(server: uid.description).filter { $0.kind == .restore }
            return (
                try tx.backups(server: uid.description),
                try Self.backupPolicy(tx, server: uid.description, configuration: configuration),
                Set(restores.compactMap { $0.arguments["id"].flatMap { CheckedNumber.integer($0, in: 1...Int64.max) } })
            )
        }
        let decision = BackupRetention.decide(
            all.map { BackupRetention.Backup(id: $0.id, createdAt: $0.createdAt) }, policy: policy, now: clock(), protected: protected)
        for id in decision.delete { try deleteBackup(uid, id: id) }
        if !decision.delete.isEmpty {
            logger.info("backups removed by retention", metadata: ["server.uid": "\(uid)", "backups": "\(decision.delete)"])
        }
        return decision.delete
    }

    /// The data dir's group (API workers and the scheduler share it), nil when it cannot be read.
    func dataGroup() -> UInt32? {
        var st = stat()
        return stat(configuration.dataDir, &st) == 0 ? st.st_gid : nil
    }

    /// SHA-256 and size of bytes seen in order on one thread (the archive's reader) and read
    /// once it has ended (`finalize`, after `ArchiveExtractor.extract` returned or threw).
    final class Checksum: @unchecked Sendable {  // `update` runs on the feeder thread only, `finalize` after it ended
        private var hasher = SHA256()
        private var size: Int64 = 0

        func update(_ bytes: UnsafeRawBufferPointer) {
            hasher.update(bufferPointer: bytes)
            size += Int64(bytes.count)
        }

        func finalize() -> (String, Int64) {
            (hasher.finalize().map { String($0, radix: 16).leftPadded(2) }.joined(), size)
        }
    }

    static func sha256(ofFile path: String) throws -> (String, Int64) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var hasher = SHA256()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw FileError(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            size += Int64(n)
        }
        return (hasher.finalize().map { String($0, radix: 16).leftPadded(2) }.joined(), size)
    }

    /// `YYYYmmdd-HHMMSS` in UTC, as PEON named its save zips.
    static func stamp(_ seconds: Int64) -> String {
        String(WallClock.iso8601(seconds).filter { $0 != "-" && $0 != ":" && $0 != "Z" }.map { $0 == "T" ? "-" : $0 })
    }

    static func randomHex(_ bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16).leftPadded(2) }.joined()
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
