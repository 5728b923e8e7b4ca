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

    /// Makes a backup; the job's result names it (`{"id"}`). A running server is made consistent as
    /// its plan says: its save command first, or a stop and a start around the copy. The server's
    /// node writes the archive (`NodeOperation.archive`); it lands in this host's backup folder,
    /// whichever node holds the server, so a backup outlives its node.
    func backup(_ uid: ServerUID, format: ArchiveWriter.Format) throws -> JSON {
        let channel = try platform.channel(for: uid)
        let plan = try plan(uid.game)
        let server = try record(uid)
        let running = server.containerID.flatMap { try? platform.runningContainer(ServerRef($0)) }
        var restart = false
        if let running {
            switch plan.backup {
            case .saveCommand(let command):
                if let rcon = plan.rcon {
                    _ = try? rconCommand(server, plan: plan, rcon: rcon, command: command, on: (running.channel, running.container))
                } else {
                    try? running.channel.consoleLine(container: running.container, command)
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
            let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw FileError(path: partial, reason: String(cString: strerror(errno))) }
            do {
                try channel.archive(uid, format: format.rawValue, to: fd)
            } catch {
                close(fd)
                throw error
            }
            guard fsync(fd) == 0, close(fd) == 0 else { throw FileError(path: partial, reason: String(cString: strerror(errno))) }
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

    /// Puts a backup's folders back. The server's node reads the archive once (streamed from this
    /// host's backup folder), extracting it into a staging folder while it checksums the very bytes
    /// extracted; the server keeps running meanwhile. A checksum that does not match (or a refused
    /// archive) changes nothing. Only then is the server stopped, each folder swapped in by rename
    /// on the node and the server started again if it should run.
    func restore(_ uid: ServerUID, backup id: Int64) throws {
        guard let backup = try store.read({ tx in try tx.backup(id, server: uid.description) }) else {
            throw DomainError.notFound(kind: "backup", id: "\(id)")
        }
        let channel = try platform.channel(for: uid)
        let archive = configuration.backupDir + "/" + backup.path
        let fd = open(archive, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: archive, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        do {
            try channel.restoreStage(uid, backup: id, sha256: backup.sha256, from: fd)
        } catch {
            // A changed archive is the request's problem (400), as before the node did the work.
            if case .refused(let message) = error, message.contains("does not match its checksum") {
                throw DomainError.invalid(field: "id", reason: message)
            }
            throw error
        }
        let wasRunning = try record(uid).desiredState == "running"
        do {
            try stop(uid, keepDesired: true)
            try channel.restoreSwap(uid, backup: id)
        } catch {
            try? channel.restoreDiscard(uid, backup: id)
            if wasRunning { try? start(uid) }
            throw error
        }
        if wasRunning { try start(uid) }
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
            let restores = try tx.pendingJobs(server: uid.description)
            return (
                try tx.backups(server: uid.description),
                try Self.backupPolicy(tx, server: uid.description, configuration: configuration),
                Set(restores.compactMap { job in if case .restore(let id)? = try? job.request { id } else { nil } })
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
