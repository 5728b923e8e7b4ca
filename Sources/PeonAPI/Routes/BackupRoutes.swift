import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Backups as objects (`POST /server/backup`, `GET /server/backups`, `PUT /server/restore`,
/// `DELETE /server/backup`) and PEON's `GET /server/save` zip download. The scheduler makes,
/// restores and removes them (jobs); the API only lists them and streams a made file.
enum BackupRoutes {
    static func create(_ uid: ServerUID, request: Request, context: APIContext) throws -> Response {
        _ = try ServerRoutes.serverObject(uid, context)
        try ServerRoutes.requireScheduler(context)
        let job = try ServerRoutes.enqueue(uid, .backup(.tarZstd), context: context)
        return try ServerRoutes.answer(job, request, context) { (done: JobRecord) in .json(json(try made(done, uid, context)), status: 201)
        }
    }

    /// The backup a finished backup job made.
    static func made(_ job: JobRecord, _ uid: ServerUID, _ context: APIContext) throws -> BackupRecord {
        guard let id = job.result?["id"].flatMap({ CheckedNumber.integer($0, in: 1...Int64.max) }),
            let backup = try context.store.read({ tx in try tx.backup(id, server: uid.description) })
        else { throw HTTPError(status: 502, code: "job.failed", message: "The backup job made no archive.") }
        return backup
    }

    /// A server's backups; they outlive the server (kept by a destroy and an erase unless asked),
    /// so they are listed, and deletable by id, by its uid after it is gone.
    static func list(_ uid: ServerUID, context: APIContext) throws -> Response {
        let (exists, all) = try context.store.read { tx in (try tx.server(uid) != nil, try tx.backups(server: uid.description)) }
        guard exists || !all.isEmpty else {
            throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
        }
        return .json(.array(all.map(json)))
    }

    /// `GET /server/backup-policy/<uid>`: the retention the scheduler applies to the server's
    /// backups (its own, or `PEON_BACKUP_KEEP` with no daily or weekly ones).
    static func policy(_ uid: ServerUID, context: APIContext) throws -> Response {
        .json(try policyJSON(uid, context))
    }

    /// `PUT /server/backup-policy/<uid>` with any of `keep_last`, `keep_daily`, `keep_weekly`:
    /// stores the policy and queues a `prune_backups` job in one transaction; answers the policy
    /// and the ids the job removed once it ran (or 202 and the job).
    static func setPolicy(_ uid: ServerUID, body: JSON, principal: Principal, request: Request, context: APIContext) throws -> Response {
        guard try context.store.read({ tx in try tx.server(uid) }) != nil else {
            throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
        }
        try ServerRoutes.requireScheduler(context)
        let job = try ServerRoutes.enqueue(uid, .pruneBackups, context: context) { tx in
            let current = try tx.backupPolicy(server: uid.description) ?? BackupPolicy(keepLast: context.configuration.backupKeep)
            let next = try current.updating(with: body)
            // Lowering a policy deletes backups at once: as `DELETE /server/backup`, admin only.
            if next.keepsLess(than: current), !principal.scope.allows(.admin) { throw AuthError.scope(needed: "admin") }
            try tx.setBackupPolicy(server: uid.description, next, now: WallClock.now())
        }
        return try ServerRoutes.answer(job, request, context) { (done: JobRecord) in
            guard case .object(var members) = try policyJSON(uid, context) else { return .json(.null) }
            members.append(("deleted", done.result?["deleted"] ?? .array([])))
            return .json(.object(members))
        }
    }

    static func policyJSON(_ uid: ServerUID, _ context: APIContext) throws -> JSON {
        try context.store.read { tx in
            guard try tx.server(uid) != nil else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            let own = try tx.backupPolicy(server: uid.description)
            let policy = own ?? BackupPolicy(keepLast: context.configuration.backupKeep)
            guard case .object(let members) = policy.json else { return .null }
            return .object([("server_uid", .string(uid.description))] + members + [("default", .bool(own == nil))])
        }
    }

    /// The backup the body names (`{"id": n}`), which must be one of the server's.
    static func existingBackupID(_ uid: ServerUID, body: JSON, context: APIContext) throws -> Int64 {
        let id = try backupID(body)
        guard try context.store.read({ tx in try tx.backup(id, server: uid.description) }) != nil else {
            throw HTTPError(status: 404, code: "backup.not_found", message: "\(uid) has no backup \(id).")
        }
        return id
    }

    static func restore(_ uid: ServerUID, body: JSON, request: Request, context: APIContext) throws -> Response {
        let id = try existingBackupID(uid, body: body, context: context)
        try ServerRoutes.requireScheduler(context)
        let job = try ServerRoutes.enqueue(uid, .restore(backup: id), context: context)
        return try ServerRoutes.answer(job, request, context) { .json(try ServerRoutes.serverObject(uid, context)) }
    }

    static func delete(_ uid: ServerUID, body: JSON, request: Request, context: APIContext) throws -> Response {
        let id = try existingBackupID(uid, body: body, context: context)
        try ServerRoutes.requireScheduler(context)
        let job = try ServerRoutes.enqueue(uid, .deleteBackup(backup: id), context: context)
        return try ServerRoutes.answer(job, request, context) {
            .json(["status": "success", "info": .string("Backup \(id) of \(uid) was removed.")])
        }
    }

    /// PEON's save: a zip of the server's actions, config and user folders, made by the scheduler
    /// and streamed from disk (`Content-Disposition` as PEON named it). A client asking for JSON
    /// (PEON's Discord bot) gets the backup object instead.
    static func save(_ uid: ServerUID, request: Request, context: APIContext) throws -> Response {
        _ = try ServerRoutes.serverObject(uid, context)
        try ServerRoutes.requireScheduler(context)
        let wantsJSON = request.header("accept")?.contains("application/json") == true
        let job = try ServerRoutes.enqueue(uid, .backup(.zip), context: context)
        return try ServerRoutes.answer(job, request, context) { (done: JobRecord) in
            let backup = try made(done, uid, context)
            if wantsJSON {
                return .json(["status": "success", "info": .string("Saved \(uid)."), "backup": json(backup)])
            }
            return try stream(
                context.configuration.backupDir + "/" + backup.path, name: String(backup.path.split(separator: "/").last ?? "save.zip"))
        }
    }

    /// A file streamed in 64 KiB pieces, never read whole into memory.
    static func stream(_ path: String, name: String) throws -> Response {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw HTTPError(status: 502, code: "backup.unreadable", message: "The saved archive cannot be read.") }
        let headers = [
            ("Content-Type", "application/zip"), ("Content-Disposition", "attachment; filename=\(name)"), ("Cache-Control", "no-store"),
        ]
        return Response(status: 200, headers: headers) { write in
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR { continue }
                guard n > 0, write(Array(buffer[..<n])) else { return }
            }
        }
    }

    static func backupID(_ body: JSON) throws -> Int64 {
        let value: JSON? =
            if case .string(let text) = body["id"] { CheckedNumber.integer(text, in: 1...Int64.max).map { .number(Double($0)) } } else {
                body["id"]
            }
        guard let id = CheckedNumber.integer(value, in: 1...(1 << 53)) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "id must be the id of one of the server's backups.")
        }
        return id
    }

    static func json(_ b: BackupRecord) -> JSON {
        [
            "id": .number(Double(b.id)), "server_uid": .string(b.serverUID), "created": .string(WallClock.iso8601(b.createdAt)),
            "created_at": .number(Double(b.createdAt)), "size": .number(Double(b.bytes)), "sha256": .string(b.sha256),
            "format": .string(b.format), "name": .string(String(b.path.split(separator: "/").last ?? "")),
        ]
    }
}
