import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The server lifecycle (contract §1.4): API workers validate and write jobs; the scheduler runs
/// them. An action waits for its job (bounded) and answers the server object, as PEON did, or with
/// `?async=true` answers 202 and the job.
enum ServerRoutes {
    /// How long an action waits for its job before answering 202 with the job.
    static let waitSeconds = 120.0
    /// A heartbeat older than this means the scheduler is down.
    static let heartbeatSeconds: Int64 = 5

    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/servers", scope: .read) { _, context, _, _ in try serverList(context) }

        router.on("GET", "/api/v1/server/:action/:uid", scope: .read) { request, context, p, principal in
            let uid = try ServerUID(validating: p["uid"])
            switch p["action"] {
            case "schedule": return try ScheduleRoutes.list(uid, context: context)
            case "logs": return try LogRoutes.logs(uid, request: request, principal: principal, context: context)
            case "backups": return try BackupRoutes.list(uid, context: context)
            case "backup-policy": return try BackupRoutes.policy(uid, context: context)
            case "save":
                guard principal.scope.allows(.operate) else { throw AuthError.scope(needed: "operate") }
                return try BackupRoutes.save(uid, request: request, context: context)
            default: break
            }
            var object = try serverObject(uid, context)
            if p["action"] == "stats", case .object(var members) = object {
                let running = object["container_state"] == "running"
                let sample = running ? try context.store.read { tx in try tx.latestStats(server: uid.description) } : nil
                members += statsMembers(sample)
                // Additive: `?history=<minutes>` (1 to 1440) adds the samples of that span, oldest first.
                if let text = request.queryItem("history") {
                    guard let minutes = CheckedNumber.int(text, in: 1...1440) else {
                        throw HTTPError(
                            status: 400, code: "request.invalid", message: "history must be a number of minutes from 1 to 1440.")
                    }
                    let samples = try context.store.read { tx in
                        try tx.stats(server: uid.description, since: WallClock.now() - Int64(minutes) * 60, limit: 1440)
                    }
                    members.append(("history", .array(samples.map(historyPoint))))
                }
                object = .object(members)
            }
            return .json(object)
        }

        router.on("PUT", "/api/v1/servers", scope: .admin) { request, context, _, _ in
            try requireScheduler(context)
            let job = try context.store.write { tx in
                try checkCapacity(tx, server: "*", context: context)
                return try tx.job(try tx.enqueueJob(server: "*", .adopt, now: WallClock.now()))!
            }
            Wakeup.notify(directory: context.configuration.wakeupDir)
            return try answer(job, request, context) { try serverList(context) }
        }

        router.on("GET", "/api/v1/jobs/:id", scope: .read) { _, context, p, _ in
            guard let id = CheckedNumber.integer(p["id"], in: 1...Int64.max), let job = try context.store.read({ tx in try tx.job(id) })
            else {
                throw HTTPError(status: 404, code: "job.not_found", message: "No such job.")
            }
            return .json(job.json)
        }

        router.on("POST", "/api/v1/server/backup/:uid", scope: .operate) { request, context, p, _ in
            try BackupRoutes.create(ServerUID(validating: p["uid"]), request: request, context: context)
        }

        router.on("POST", "/api/v1/server/create", scope: .admin) { request, context, _, _ in
            let body = try request.jsonObject()
            guard let game = body["game_uid"]?.stringValue else {
                throw HTTPError(status: 400, code: "request.invalid", message: "game_uid is required.")
            }
            let name = body["servername"]?.stringValue ?? body["warcamp"]?.stringValue
            return try create(game: game, name: name, body: body, request: request, context: context)
        }

        router.on("PUT", "/api/v1/server/:action/:uid", scope: .operate) { request, context, p, principal in
            let body = try request.jsonObject()
            let action = p["action"]
            switch action {
            case "create":
                guard principal.scope.allows(.admin) else { throw AuthError.scope(needed: "admin") }
                let parts = p["uid"].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                return try create(game: parts[0], name: parts.count > 1 ? parts[1] : nil, body: body, request: request, context: context)
            case _ where !p["uid"].contains(".") && Identifier.isValid(p["uid"]):
                throw HTTPError(
                    status: 404, code: "server.not_found",
                    message: "For the action [\(Identifier.quoted(action))] a server uid GAME.NAME is required, not only a game.")
            case "start", "stop", "restart":
                return try power(
                    JobKind(rawValue: action)!, uid: ServerUID(validating: p["uid"]), body: body, request: request, context: context)
            case "update":
                guard principal.scope.allows(.admin) else { throw AuthError.scope(needed: "admin") }
                return try update(ServerUID(validating: p["uid"]), body: body, request: request, context: context)
            case "restore":
                guard principal.scope.allows(.admin) else { throw AuthError.scope(needed: "admin") }
                return try BackupRoutes.restore(ServerUID(validating: p["uid"]), body: body, request: request, context: context)
            case "backup-policy":
                return try BackupRoutes.setPolicy(
                    ServerUID(validating: p["uid"]), body: body, principal: principal, request: request, context: context)
            case "console":
                return try ConsoleRoutes.send(ServerUID(validating: p["uid"]), body: body, request: request, context: context)
            case "schedule":
                guard principal.scope.allows(.admin) else { throw AuthError.scope(needed: "admin") }
                return try ScheduleRoutes.add(ServerUID(validating: p["uid"]), body: body, context: context)
            case "description":
                return try describe(ServerUID(validating: p["uid"]), body: body, context: context)
            case "modify":
                guard principal.scope.allows(.admin) else { throw AuthError.scope(needed: "admin") }
                return try modify(ServerUID(validating: p["uid"]), body: body, context: context)
            case "get", "info", "stats":
                return .json(try serverObject(ServerUID(validating: p["uid"]), context))
            default:
                throw HTTPError(status: 404, code: "action.unknown", message: "Unsupported action [\(Identifier.quoted(action))].")
            }
        }

        router.on("DELETE", "/api/v1/server/:action/:uid", scope: .admin) { request, context, p, _ in
            let body = try request.jsonObject()
            if p["action"] == "backup" {
                return try BackupRoutes.delete(ServerUID(validating: p["uid"]), body: body, request: request, context: context)
            }
            if p["action"] == "schedule" { return try ScheduleRoutes.remove(ServerUID(validating: p["uid"]), body: body, context: context) }
            guard p["action"] == "destroy" || p["action"] == "eradicate" else {
                throw HTTPError(
                    status: 404, code: "action.unknown", message: "Incorrect action [\(Identifier.quoted(p["action"]))] provided")
            }
            return try remove(ServerUID(validating: p["uid"]), action: p["action"], body: body, request: request, context: context)
        }
    }

    /// One sample of `?history`: when, CPU percent, memory bytes.
    static func historyPoint(_ s: StatsRecord) -> JSON {
        ["at": .int(Int(s.at)), "cpu_percent": .number((s.cpuPercent * 100).rounded() / 100), "memory_bytes": .int(Int(s.memory))]
    }

    /// Top-level `cpu_percent`, `memory_percent`, `uptime` (what the web UI shows) beside `stats`.
    static func statsMembers(_ s: StatsRecord?) -> [(String, JSON)] {
        guard let s else {
            return [("cpu_percent", .number(0)), ("memory_percent", .number(0)), ("uptime", .number(0)), ("stats", .object([]))]
        }
        let memoryPercent = s.memoryLimit > 0 ? Double(s.memory) / Double(s.memoryLimit) * 100 : 0
        func round2(_ x: Double) -> JSON { .number((x * 100).rounded() / 100) }
        return [
            ("cpu_percent", round2(s.cpuPercent)), ("memory_percent", round2(memoryPercent)), ("uptime", .number(Double(s.uptime))),
            (
                "stats",
                .object([
                    ("sampled_at", .number(Double(s.at))), ("cpu_percent", round2(s.cpuPercent)),
                    ("memory_bytes", .number(Double(s.memory))),
                    ("memory_limit_bytes", .number(Double(s.memoryLimit))), ("network_rx_bytes", .number(Double(s.networkRx))),
                    ("network_tx_bytes", .number(Double(s.networkTx))),
                ])
            ),
        ]
    }

    // MARK: - Actions

    static func serverObject(_ uid: ServerUID, _ context: APIContext) throws -> JSON {
        try context.store.read { tx in
            // As the list shows it, in one query. The config is the scheduler's snapshot, read on the
            // server's node (every 5 s while it runs, and at the end of each job that starts it): the
            // API never reads a node's disk.
            guard let summary = try tx.serverSummary(uid) else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            return ServerObject.json(summary, publicAddress: context.configuration.publicAddress, gameBind: context.configuration.gameBind)
        }
    }

    /// `GET /servers`: one query, no Docker call and no file read (config comes from the snapshot).
    ///
    /// Each worker keeps the rendered answer until a write to servers or schedules bumps the
    /// trigger-maintained `servers.version`.
    static func serverList(_ context: APIContext) throws -> Response {
        let version = try context.store.read { tx in try tx.meta("servers.version") } ?? "0"
        if let cached = context.serverListCache, cached.version == version {
            return Response(status: 200, headers: [("Content-Type", "application/json")], body: cached.body)
        }
        let (current, list) = try context.store.read { tx in
            (
                try tx.meta("servers.version") ?? "0",
                try tx.serverSummaries().map {
                    ServerObject.json($0, publicAddress: context.configuration.publicAddress, gameBind: context.configuration.gameBind)
                }
            )
        }
        let body = JSON.array(list).bytes
        context.serverListCache = (current, body)
        return Response(status: 200, headers: [("Content-Type", "application/json")], body: body)
    }

    static func create(game: String, name: String?, body: JSON, request: Request, context: APIContext) throws -> Response {
        let gameUID = try GameUID(validating: game)
        guard let planText = try context.store.read({ tx in try tx.planDocument(gameUID) }) else {
            throw HTTPError(status: 404, code: "plan.not_found", message: "Could not get the settings for [\(gameUID)]")
        }
        let plan = try Plan(document: JSON.parse(planText), expectedGameUID: gameUID)
        let settings = try ServerSettings.resolve(plan: plan, request: body)
        let description = try text(body["description"], field: "description") ?? ""
        _ = try ResourceLimits.parse(body["limits"], over: plan.limits)
        let limits = body["limits"].flatMap { $0.isNull ? nil : $0 } ?? .object([])
        _ = try CrashPolicy.parse(body["crash_policy"])
        let crashPolicy = body["crash_policy"].flatMap { $0.isNull ? nil : $0 } ?? .object([])
        let idleStop = try IdleStop.parse(body["idle_stop"])
        let wakeOnConnect = try WakeOnConnect.parse(body["wake_on_connect"])
        try requireScheduler(context)
        let now = WallClock.now()
        // Flags are true or false (PEON's clients also send "true"/"false"); anything else is a 400,
        // never read as false.
        func flag(_ key: String) throws -> Bool {
            switch body[key] {
            case nil, .null?, .bool(false)?, .string("false")?: return false
            case .bool(true)?, .string("true")?: return true
            default: throw HTTPError(status: 400, code: "request.invalid", message: "\(key) must be true or false.")
            }
        }
        let startLater = try flag("start_later")
        let noclean = try flag("noclean")
        let (uid, job) = try context.store.write { tx in
            let name =
                try name
                ?? {
                    var rng = SystemRandomNumberGenerator()
                    let taken = Set(try tx.servers().filter { $0.uid.game == gameUID }.map(\.uid.name))
                    return WarcampNames.random(avoiding: taken, using: &rng)
                }()
            let uid = try ServerUID(game: gameUID, name: name)
            guard try tx.server(uid) == nil else {
                throw DomainError.conflict("There is already a server named \(uid). Use update or modify to change it.")
            }
            try checkCapacity(tx, server: uid.description, context: context)
            try tx.insertServer(
                ServerRecord(
                    uid: uid, description: description, settings: settings, desiredState: startLater ? "stopped" : "running",
                    limits: limits, crashPolicy: crashPolicy, createdAt: now),
                now: now)
            if let idleStop { try tx.setIdleStop(server: uid.description, minutes: idleStop) }
            if wakeOnConnect == true { try tx.setWakeOnConnect(server: uid.description, true) }
            let id = try tx.enqueueJob(server: uid.description, .create(start: !startLater, noclean: noclean), now: now)
            return (uid, try tx.job(id)!)
        }
        if let time = try ScheduledTime.parse(body, now: now) {
            try context.store.write { tx in try tx.setSchedule(server: uid.description, action: .stop, time: time, now: now) }
        }
        Wakeup.notify(directory: context.configuration.wakeupDir)
        return try answer(job, request, context) {
            guard startLater else { return .json(try serverObject(uid, context)) }
            return .json([
                "status": "success",
                "info": .string("The server files for [\(uid.name)] were created, but the server was not started (start_later)."),
            ])
        }
    }

    static func power(_ kind: JobKind, uid: ServerUID, body: JSON, request: Request, context: APIContext) throws -> Response {
        _ = try serverObject(uid, context)
        let now = WallClock.now()
        let schedule = try ScheduledTime.parse(body, now: now)
        if kind == .stop, let schedule {
            // A timed stop: nothing happens now, the scheduler fires it when due.
            try context.store.write { tx in try tx.setSchedule(server: uid.description, action: .stop, time: schedule, now: now) }
            return .json(try serverObject(uid, context))
        }
        try requireScheduler(context)
        // A plain stop clears pending stops; a start or restart with a schedule sets one.
        if kind == .stop || schedule != nil {
            let time = kind == .stop ? nil : schedule
            try context.store.write { tx in try tx.setSchedule(server: uid.description, action: .stop, time: time, now: now) }
        }
        let job = try enqueue(uid, kind == .start ? .start : kind == .stop ? .stop(reason: nil) : .restart, context: context)
        return try answer(job, request, context) { .json(try serverObject(uid, context)) }
    }

    static func update(_ uid: ServerUID, body: JSON, request: Request, context: APIContext) throws -> Response {
        // PEON's aliases (all, container, game) and any case, stored as the canonical mode.
        let mode: UpdateMode
        do {
            mode = try UpdateMode(parsing: body["mode"]?.stringValue)
        } catch {
            throw HTTPError(status: 400, code: "request.invalid", message: "mode must be full, image, server, reinit, quick or validate.")
        }
        _ = try serverObject(uid, context)
        try requireScheduler(context)
        let job = try enqueue(uid, .update(mode), context: context)
        return try answer(job, request, context) { .json(["status": "success", "info": .string(uid.description), "stdout": "[]"]) }
    }

    /// `DELETE /server/<destroy|eradicate>/<uid>`. `destroy` removes the workload and keeps the
    /// files; `{"eradicate": true}` (or the word `eradicate`) erases the folder too, also of a
    /// server destroyed earlier (its row is gone, its folder stays on its node: PEON's web UI
    /// destroys that way, and PEON erased such files). Backups stay unless `delete_backups`.
    static func remove(_ uid: ServerUID, action: String, body: JSON, request: Request, context: APIContext) throws -> Response {
        for key in ["eradicate", "delete_backups"] {
            if let flag = body[key], flag.boolValue == nil {
                throw HTTPError(status: 400, code: "request.invalid", message: "\(key) must be true or false.")
            }
        }
        let eradicate = body["eradicate"] == .bool(true) || (action == "eradicate" && body["eradicate"] != .bool(false))
        let deleteBackups = body["delete_backups"] == .bool(true)
        if deleteBackups, !eradicate {
            throw HTTPError(
                status: 400, code: "request.invalid", message: "delete_backups needs eradicate: backups stay while the files do.")
        }
        let purge = "All files for \(uid) will be purged from the server. This may take a few moments."
        func reply(_ info: String, _ done: JobRecord) -> Response {
            var members: [(String, JSON)] = [("status", "success"), ("info", .string(info))]
            if deleteBackups { members.append(("deleted_backups", done.result?["deleted_backups"] ?? .array([]))) }
            return .json(.object(members))
        }
        guard try context.store.read({ tx in try tx.server(uid) }) == nil else {
            try requireScheduler(context)
            let job = try enqueue(uid, .destroy(eradicate: eradicate, deleteBackups: deleteBackups), context: context)
            return try answer(job, request, context) { (done: JobRecord) in
                reply("Server \(uid) was removed. " + (eradicate ? purge : ""), done)
            }
        }
        guard eradicate else { throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.") }
        try requireScheduler(context)
        let job = try enqueue(uid, .eradicate(deleteBackups: deleteBackups), context: context)
        return try answer(job, request, context) { (done: JobRecord) in
            let backups = done.result?["deleted_backups"]?.arrayValue ?? []
            guard done.result?["files"] == .bool(true) || !backups.isEmpty else {
                throw HTTPError(
                    status: 404, code: "server.not_found", message: "There is no server, and no files of one, named \(uid).")
            }
            return reply(purge, done)
        }
    }

    static func describe(_ uid: ServerUID, body: JSON, context: APIContext) throws -> Response {
        guard let description = try text(body["description"], field: "description") else {
            throw HTTPError(status: 400, code: "request.invalid", message: "The description argument was incorrectly provided.")
        }
        try context.store.write { tx in
            guard var server = try tx.server(uid) else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            server.description = description
            try tx.updateServer(server, now: WallClock.now())
        }
        return .json(try serverObject(uid, context))
    }

    /// Changes settings, description or limits; the container is re-created at the next start.
    static func modify(_ uid: ServerUID, body: JSON, context: APIContext) throws -> Response {
        let description = try text(body["description"], field: "description")
        let idleStop = try IdleStop.parse(body["idle_stop"])
        let wakeOnConnect = try WakeOnConnect.parse(body["wake_on_connect"])
        try context.store.write { tx in
            guard var server = try tx.server(uid) else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            guard let planText = try tx.planDocument(uid.game) else {
                throw HTTPError(status: 404, code: "plan.not_found", message: "Could not get the settings for [\(uid.game)]")
            }
            let plan = try Plan(document: JSON.parse(planText), expectedGameUID: uid.game)
            server.settings = try ServerSettings.resolve(plan: plan, request: body, previous: server.settings)
            if let description { server.description = description }
            if let limits = body["limits"], !limits.isNull {
                _ = try ResourceLimits.parse(limits, over: plan.limits)
                server.limits = limits
            }
            if let policy = body["crash_policy"], !policy.isNull {
                _ = try CrashPolicy.parse(policy)
                server.crashPolicy = policy
            }
            try tx.updateServer(server, now: WallClock.now())
            if body["idle_stop"] != nil { try tx.setIdleStop(server: uid.description, minutes: idleStop) }
            if let wakeOnConnect { try tx.setWakeOnConnect(server: uid.description, wakeOnConnect) }
        }
        // Turned off while asleep: the scheduler lets the ports go.
        if wakeOnConnect == false { Wakeup.notify(directory: context.configuration.wakeupDir) }
        return .json(try serverObject(uid, context))
    }

    // MARK: - Jobs

    /// Answers an action: 202 with its job for `?async=true`, else waits for the job and, when it
    /// succeeded, answers what `done` makes. With every wait slot of this process taken, or when
    /// the client goes away while it waits, the job is answered as with `?async=true`.
    static func answer(_ job: JobRecord, _ request: Request, _ context: APIContext, done: () throws -> Response) throws -> Response {
        try answer(job, request, context) { (_: JobRecord) in try done() }
    }

    /// As above, with the finished job (its `result`) at hand.
    static func answer(_ job: JobRecord, _ request: Request, _ context: APIContext, done: (JobRecord) throws -> Response) throws
        -> Response
    {
        if try isAsync(request) { return .json(job.json, status: 202) }
        guard context.waits.acquire() else { return .json(job.json, status: 202) }
        defer { context.waits.release() }
        guard let finished = try wait(for: job.id, request: request, context: context) else { return .json(job.json, status: 202) }
        try ensureSucceeded(finished)
        return try done(finished)
    }

    /// `?async=true` answers 202 with the job at once; `false` or absent waits.
    static func isAsync(_ request: Request) throws -> Bool {
        switch request.queryItem("async") {
        case nil, "false": return false
        case "true": return true
        default: throw HTTPError(status: 400, code: "request.invalid", message: "async must be true or false.")
        }
    }

    static func text(_ value: JSON?, field: String) throws -> String? {
        guard let value, !value.isNull else { return nil }
        guard let s = value.stringValue, s.utf8.count <= 500, !s.utf8.contains(0) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "\(field) must be a string of at most 500 bytes.")
        }
        return s
    }

    static func requireScheduler(_ context: APIContext) throws {
        let beat = try context.store.read { tx in try tx.meta("scheduler.heartbeat") }
        guard schedulerRunning(heartbeat: beat, context) else {
            throw HTTPError(
                status: 503, code: "scheduler.down",
                message: "The scheduler is not running, so servers cannot change now. Try again shortly.",
                headers: [("Retry-After", "5")])
        }
    }

    /// The scheduler holds its lock (it is alive) and its heartbeat is fresh (it is not wedged).
    static func schedulerRunning(heartbeat: String?, _ context: APIContext) -> Bool {
        let beat = heartbeat.flatMap { Int64($0) } ?? 0
        return WallClock.now() - beat <= heartbeatSeconds && ProcessLock.isHeld(context.configuration.schedulerLockPath)
    }

    /// Writes the job (or joins an identical one already pending) and wakes the scheduler;
    /// `first` runs in the same transaction before (the change the job applies).
    static func enqueue(
        _ uid: ServerUID, _ request: JobRequest, context: APIContext, first: ((Transaction) throws -> Void)? = nil
    ) throws -> JobRecord {
        let job = try context.store.write { tx in
            try first?(tx)
            if let same = try tx.pendingJobs(server: uid.description).last, (try? same.request) == request { return same }
            try checkCapacity(tx, server: uid.description, context: context)
            if let desired = request.kind.desiredState, var server = try tx.server(uid) {
                server.desiredState = desired
                try tx.updateServer(server, now: WallClock.now())
            }
            return try tx.job(try tx.enqueueJob(server: uid.description, request, now: WallClock.now()))!
        }
        Wakeup.notify(directory: context.configuration.wakeupDir)
        return job
    }

    /// Refuses a new job when its server, or all servers together, have too many unfinished ones
    /// (`PEON_MAX_PENDING_JOBS`, `PEON_MAX_PENDING_JOBS_TOTAL`): a client looping on an action
    /// must not queue work without end.
    static func checkCapacity(_ tx: Transaction, server: String, context: APIContext) throws {
        let (mine, all) = try tx.pendingJobCounts(server: server)
        let configuration = context.configuration
        guard mine < configuration.maxPendingJobsPerServer else {
            throw DomainError.tooManyJobs(
                "\(server == "*" ? "Imports" : "Server \(server)") already has \(mine) unfinished jobs; retry when some have run.")
        }
        guard all < configuration.maxPendingJobs else {
            throw DomainError.tooManyJobs("There are \(all) unfinished jobs; retry when some have run.")
        }
    }

    /// Waits for a job to finish; nil when the client went away first.
    static func wait(for id: Int64, request: Request, context: APIContext) throws -> JobRecord? {
        let started = Monotonic.seconds()
        let deadline = started + waitSeconds
        // Short polls while the job is young (most finish in milliseconds), then slower ones so
        // dozens of waiters on long stops cost the readers next to them nothing measurable.
        var pause = 0.001
        while true {
            if let job = try context.store.read({ tx in try tx.job(id) }), job.state.isFinished { return job }
            if request.clientGone() { return nil }
            guard Monotonic.seconds() < deadline else {
                throw HTTPError(
                    status: 504, code: "job.pending", message: "The action is still running; follow it at /api/v1/jobs/\(id).",
                    extra: [("job", .number(Double(id)))])
            }
            request.idle(pause)
            pause = min(pause * 1.5, Monotonic.seconds() - started < 1 ? 0.01 : 0.05)
        }
    }

    static func ensureSucceeded(_ job: JobRecord) throws {
        switch job.failureCode {
        case .portsExhausted?:
            throw HTTPError(status: 409, code: "ports.exhausted", message: job.error ?? "No free ports.", extra: [("job", job.json)])
        case .serverExists?:
            throw HTTPError(status: 409, code: "server.exists", message: job.error ?? "The server exists.", extra: [("job", job.json)])
        case .nodeUnavailable?:
            // The node that holds the server is down or drained (Swarm): try again when it is back.
            throw HTTPError(
                status: 503, code: "node.unavailable", message: job.error ?? "The server's node is unavailable.", extra: [("job", job.json)]
            )
        case let code?:
            // A console job the game's state refused (not running any more, RCON refused or
            // unreachable), a file operation the path refused.
            throw HTTPError(
                status: code.status, code: code.rawValue, message: job.error ?? "The \(job.kind.rawValue) failed.",
                extra: [("job", job.json)])
        default:
            break
        }
        guard job.state == .succeeded else {
            throw HTTPError(
                status: 502, code: "job.failed", message: "The \(job.kind.rawValue) failed: \(job.error ?? "unknown error")",
                extra: [("job", job.json)])
        }
    }
}
