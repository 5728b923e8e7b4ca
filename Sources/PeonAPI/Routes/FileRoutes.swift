import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// The files API: a server's `config/` and `user/` (operate keys) and `actions/` (admin keys,
/// read-only), through the server's node, so it works wherever the server runs.
///
/// - `GET /api/v1/server/files/<uid>?path=<folder>` lists (no path: the server's folders);
/// - `GET /api/v1/server/file/<uid>?path=<file>` answers the bytes;
/// - `PUT` the same with the bytes as the body writes them (answers `size` and `sha256`);
/// - `DELETE` the same removes a file, a link or a folder.
///
/// Each is a short job of a runner of its own (it waits for no backup); the path is checked here
/// and again on the node, which refuses a link at any level, a FIFO or device, and a file over
/// `PEON_FILE_MAX`. Bytes cross between the API and the scheduler with the job, in the database.
enum FileRoutes {
    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/server/files/:uid", scope: .operate) { request, context, p, principal in
            let uid = try ServerUID(validating: p["uid"])
            try requireServer(uid, context)
            let text = request.queryItem("path") ?? ""
            let path = text.isEmpty || text == "/" ? nil : try ServerFilePath(validating: text)
            try authorize(path, reading: true, principal)
            let job = try run(uid, .listFiles(path: path), context: context, request: request)
            let showActions = principal.scope.allows(.admin)
            let entries = (job.result?["entries"]?.arrayValue ?? []).compactMap(ServerFileEntry.init(json:)).filter {
                path != nil || showActions || $0.name != ServerFilePath.Area.actions.rawValue
            }
            return .json([
                "status": "success", "server_uid": .string(uid.description), "path": .string(path?.description ?? ""),
                "entries": .array(
                    entries.map {
                        [
                            "name": .string($0.name), "type": .string($0.kind.rawValue), "size": .int(Int($0.size)),
                            "modified": .string(WallClock.iso8601($0.modified)),
                        ]
                    }),
                "truncated": job.result?["truncated"] ?? false,
            ])
        }

        router.on("GET", "/api/v1/server/file/:uid", scope: .operate) { request, context, p, principal in
            let uid = try ServerUID(validating: p["uid"])
            try requireServer(uid, context)
            let path = try requiredPath(request)
            try authorize(path, reading: true, principal)
            let job = try run(uid, .readFile(path: path), context: context, request: request)
            guard let bytes = try context.store.write({ tx in try tx.jobPayload(job.id, take: true) }) else {
                throw HTTPError(status: 502, code: "job.failed", message: "The file was read but its bytes were not stored.")
            }
            return Response(
                status: 200,
                headers: [
                    ("Content-Type", "application/octet-stream"), ("Content-Disposition", contentDisposition(path.name)),
                    ("Cache-Control", "no-store"),
                ], body: bytes)
        }

        router.on("PUT", "/api/v1/server/file/:uid", scope: .operate) { request, context, p, principal in
            let uid = try ServerUID(validating: p["uid"])
            try requireServer(uid, context)
            let path = try requiredPath(request)
            try authorize(path, reading: false, principal)
            guard request.body.count <= context.configuration.fileMax else {
                throw HTTPError(
                    status: 413, code: "file.too_large",
                    message: "The file is larger than \(context.configuration.fileMax) bytes (PEON_FILE_MAX).")
            }
            let job = try run(uid, .writeFile(path: path), payload: request.body, context: context, request: request)
            return .json([
                "status": "success", "server_uid": .string(uid.description), "path": .string(path.description),
                "size": job.result?["size"] ?? .int(request.body.count), "sha256": job.result?["sha256"] ?? .null,
            ])
        }

        router.on("DELETE", "/api/v1/server/file/:uid", scope: .operate) { request, context, p, principal in
            let uid = try ServerUID(validating: p["uid"])
            try requireServer(uid, context)
            let path = try requiredPath(request)
            try authorize(path, reading: false, principal)
            _ = try run(uid, .deleteFile(path: path), context: context, request: request)
            return .json(["status": "success", "server_uid": .string(uid.description), "path": .string(path.description), "deleted": true])
        }
    }

    /// The server first: a path's refusals are about a server that exists.
    static func requireServer(_ uid: ServerUID, _ context: APIContext) throws {
        guard try context.store.read({ tx in try tx.server(uid) }) != nil else {
            throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
        }
    }

    static func requiredPath(_ request: Request) throws -> ServerFilePath {
        guard let text = request.queryItem("path"), !text.isEmpty else {
            throw HTTPError(status: 400, code: "request.invalid", message: "path is required (config/..., user/... or actions/...).")
        }
        return try ServerFilePath(validating: text)
    }

    /// `actions/` is for admin keys, and for reading only: an update reinstalls the plan's actions.
    static func authorize(_ path: ServerFilePath?, reading: Bool, _ principal: Principal) throws {
        guard let path else { return }
        if path.area == .actions, !principal.scope.allows(.admin) { throw AuthError.scope(needed: "admin") }
        guard reading || path.area.writable else {
            throw HTTPError(
                status: 403, code: "file.read_only", message: "actions/ is read-only: an update reinstalls the plan's actions.")
        }
        guard reading || !path.isArea else {
            throw HTTPError(status: 409, code: "file.refused", message: "\(path) is one of the server's folders.")
        }
    }

    /// Queues the job (with the bytes of a write), waits for it, and answers it finished and
    /// succeeded, or its failure as its status (404, 409, 413, 503).
    static func run(_ uid: ServerUID, _ request: JobRequest, payload: [UInt8]? = nil, context: APIContext, request http: Request) throws
        -> JobRecord
    {
        try ServerRoutes.requireScheduler(context)
        guard context.waits.acquire() else {
            throw HTTPError(
                status: 503, code: "files.busy", message: "Too many requests are waiting on this worker; try again shortly.",
                headers: [("Retry-After", "2")])
        }
        defer { context.waits.release() }
        let job = try context.store.write { tx in
            try ServerRoutes.checkCapacity(tx, server: uid.description, context: context)
            let id = try tx.enqueueJob(server: uid.description, request, now: WallClock.now())
            if let payload { try tx.setJobPayload(id, payload) }
            return try tx.job(id)!
        }
        Wakeup.notify(directory: context.configuration.wakeupDir)
        guard let finished = try ServerRoutes.wait(for: job.id, request: http, context: context) else {
            throw HTTPError(status: 499, code: "request.gone", message: "The client went away.")
        }
        try ServerRoutes.ensureSucceeded(finished)
        return finished
    }

    /// `attachment` with the name as ASCII (quotes, backslashes and controls replaced) and as
    /// UTF-8 (RFC 6266 `filename*`).
    static func contentDisposition(_ name: String) -> String {
        let ascii = String(
            name.unicodeScalars.map { scalar -> Character in
                scalar.isASCII && scalar.value >= 0x20 && scalar != "\"" && scalar != "\\" && scalar.value != 0x7f ? Character(scalar) : "_"
            })
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        let encoded = name.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : "%" + hex($0) }.joined()
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}
