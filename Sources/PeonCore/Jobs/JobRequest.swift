public import PeonJSON

/// What a job does, with its arguments: the one contract between whoever queues a job (the API, a
/// schedule, the scheduler itself) and the runner that carries it out. A job row holds its kind
/// and its arguments as JSON; both ends go through this type, and a stored job whose arguments are
/// not exactly these (an unknown key, an unknown value) is refused, never read with a default.
public enum JobRequest: Sendable, Equatable {
    /// Make the server's workload and files; `start` starts it too, `noclean` keeps what a failed
    /// attempt made (for a look at it).
    case create(start: Bool, noclean: Bool)
    case start
    /// `idle`: the idle auto-stop asked (nil: a user or a schedule).
    case stop(reason: StopReason?)
    case restart
    case update(UpdateMode)
    /// Remove the server's workload; `eradicate` erases its folder too, `deleteBackups` (only with
    /// `eradicate`) its backups as well.
    case destroy(eradicate: Bool, deleteBackups: Bool)
    /// Erase what a destroyed server left by its uid (its row is gone): its folder on the node that
    /// holds it and, with `deleteBackups`, its backups (PEON's UI destroys first, erases later).
    case eradicate(deleteBackups: Bool)
    /// Adopt server folders and labelled workloads the store does not know (server uid `*`).
    case adopt
    /// Type a line into the game's console.
    case console(command: String)
    /// Archive the server's actions, config and user files.
    case backup(BackupFormat)
    /// Put a backup's files back, stopping and starting the server around it.
    case restore(backup: Int64)
    /// Remove one backup.
    case deleteBackup(backup: Int64)
    /// Apply the server's backup retention policy now (it changed).
    case pruneBackups
    /// A folder's entries (nil: the server's areas).
    case listFiles(path: ServerFilePath?)
    /// A file's bytes (the job's payload once it succeeded).
    case readFile(path: ServerFilePath)
    /// Writes the job's payload (stored with the job) at `path`.
    case writeFile(path: ServerFilePath)
    case deleteFile(path: ServerFilePath)

    public enum StopReason: String, Sendable { case idle }

    /// Whether the job decides the server's state, so a sleeping server no longer sleeps: a start
    /// (a wake's too), a user's stop, a restart, a removal. An idle stop is what puts it to sleep.
    public var endsSleep: Bool {
        switch self {
        case .start, .restart, .destroy, .eradicate: true
        case .stop(let reason): reason == nil
        default: false
        }
    }

    public enum BackupFormat: String, Sendable {
        /// Peon's backups.
        case tarZstd = "tar.zst"
        /// PEON's save download.
        case zip
    }

    public var kind: JobKind {
        switch self {
        case .create: .create
        case .start: .start
        case .stop: .stop
        case .restart: .restart
        case .update: .update
        case .destroy: .destroy
        case .eradicate: .eradicate
        case .adopt: .adopt
        case .console: .console
        case .backup: .backup
        case .restore: .restore
        case .deleteBackup: .deleteBackup
        case .pruneBackups: .pruneBackups
        case .listFiles: .listFiles
        case .readFile: .readFile
        case .writeFile: .writeFile
        case .deleteFile: .deleteFile
        }
    }

    /// The stored form of the arguments (the job row, `GET /jobs`).
    public var arguments: JSON {
        switch self {
        case .create(let start, let noclean): ["start": .bool(start), "noclean": .bool(noclean)]
        case .stop(let reason): reason.map { ["reason": .string($0.rawValue)] } ?? [:]
        case .update(let mode): ["mode": .string(mode.rawValue)]
        case .destroy(let eradicate, let deleteBackups): ["eradicate": .bool(eradicate), "delete_backups": .bool(deleteBackups)]
        case .eradicate(let deleteBackups): ["delete_backups": .bool(deleteBackups)]
        case .console(let command): ["command": .string(command)]
        case .backup(let format): ["format": .string(format.rawValue)]
        case .restore(let id), .deleteBackup(let id): ["id": .number(Double(id))]
        case .start, .restart, .adopt, .pruneBackups: [:]
        case .listFiles(let path): path.map { ["path": .string($0.description)] } ?? [:]
        case .readFile(let path), .writeFile(let path), .deleteFile(let path): ["path": .string(path.description)]
        }
    }

    /// Reads a job row back: exactly the keys and values `arguments` writes for `kind`.
    public init(kind: JobKind, arguments: JSON) throws(DomainError) {
        guard let fields = arguments.objectValue else { throw .invalid(field: "arguments", reason: "a job's arguments are an object") }
        func refuse(_ why: String) -> DomainError { .invalid(field: "arguments", reason: "a \(kind.rawValue) job: \(why)") }
        func only(_ keys: Set<String>, required: Set<String> = []) throws(DomainError) {
            for (key, _) in fields where !keys.contains(key) { throw refuse("unknown argument \(key)") }
            for key in required where arguments[key] == nil { throw refuse("\(key) is missing") }
        }
        func flag(_ key: String) throws(DomainError) -> Bool {
            guard let value = arguments[key] else { return false }
            guard let bool = value.boolValue else { throw refuse("\(key) must be true or false") }
            return bool
        }
        func path() throws(DomainError) -> ServerFilePath {
            guard let text = arguments["path"]?.stringValue else { throw refuse("path must be text") }
            return try ServerFilePath(validating: text)
        }
        func backupID() throws(DomainError) -> Int64 {
            guard let id = CheckedNumber.integer(arguments["id"], in: 1...Int64(Int32.max)) else { throw refuse("id must be a backup id") }
            return id
        }
        switch kind {
        case .create:
            try only(["start", "noclean"])
            self = .create(start: try flag("start"), noclean: try flag("noclean"))
        case .start:
            try only([])
            self = .start
        case .stop:
            try only(["reason"])
            guard let text = arguments["reason"] else {
                self = .stop(reason: nil)
                return
            }
            guard let reason = text.stringValue.flatMap(StopReason.init(rawValue:)) else { throw refuse("unknown stop reason") }
            self = .stop(reason: reason)
        case .restart:
            try only([])
            self = .restart
        case .update:
            try only(["mode"], required: ["mode"])
            guard let mode = arguments["mode"]?.stringValue.flatMap(UpdateMode.init(rawValue:)) else { throw refuse("unknown update mode") }
            self = .update(mode)
        case .destroy:
            // delete_backups may be absent: jobs queued before it existed.
            try only(["eradicate", "delete_backups"])
            let eradicate = try flag("eradicate")
            let deleteBackups = try flag("delete_backups")
            if deleteBackups && !eradicate { throw refuse("delete_backups needs eradicate") }
            self = .destroy(eradicate: eradicate, deleteBackups: deleteBackups)
        case .eradicate:
            try only(["delete_backups"])
            self = .eradicate(deleteBackups: try flag("delete_backups"))
        case .adopt:
            try only([])
            self = .adopt
        case .console:
            try only(["command"], required: ["command"])
            guard let command = arguments["command"]?.stringValue else { throw refuse("command must be text") }
            self = .console(command: command)
        case .backup:
            try only(["format"], required: ["format"])
            guard let format = arguments["format"]?.stringValue.flatMap(BackupFormat.init(rawValue:)) else {
                throw refuse("unknown backup format")
            }
            self = .backup(format)
        case .restore:
            try only(["id"], required: ["id"])
            self = .restore(backup: try backupID())
        case .deleteBackup:
            try only(["id"], required: ["id"])
            self = .deleteBackup(backup: try backupID())
        case .pruneBackups:
            try only([])
            self = .pruneBackups
        case .listFiles:
            try only(["path"])
            self = .listFiles(path: arguments["path"] == nil ? nil : try path())
        case .readFile:
            try only(["path"], required: ["path"])
            self = .readFile(path: try path())
        case .writeFile:
            try only(["path"], required: ["path"])
            self = .writeFile(path: try path())
        case .deleteFile:
            try only(["path"], required: ["path"])
            self = .deleteFile(path: try path())
        }
    }
}

/// Why a job failed, when the API answers it with a status of its own rather than the job: the
/// code the runner records in the job's result (`{"code"}`) and the API matches, one type for both.
public enum JobFailureCode: String, Sendable, CaseIterable {
    /// No free port in `PEON_PORT_RANGE` (the API answers 409).
    case portsExhausted = "ports.exhausted"
    /// The server's node is down or drained (503).
    case nodeUnavailable = "node.unavailable"
    /// A console line for a server that does not run (409).
    case serverNotRunning = "server.not_running"
    /// RCON: the game refused the password, cannot be reached, did not answer, broke the protocol,
    /// or the server's RCON settings are unusable (409).
    case rconAuthFailed = "rcon.auth_failed"
    case rconUnreachable = "rcon.unreachable"
    case rconTimeout = "rcon.timeout"
    case rconProtocol = "rcon.protocol"
    case rconSettings = "rcon.settings"

    /// Erasing a destroyed server's leftovers found a server of that name again (made since the
    /// request): its files are not leftovers (409).
    case serverExists = "server.exists"

    /// The files API refused the path: nothing there (404), a link, a FIFO, a device, a folder
    /// where a file was asked for: the tree as it is now conflicts with the request (409), over
    /// `PEON_FILE_MAX` (413).
    case fileNotFound = "file.not_found"
    case fileRefused = "file.refused"
    case fileTooLarge = "file.too_large"

    /// The status the API answers a job that failed with this code.
    public var status: Int {
        switch self {
        case .nodeUnavailable: 503
        case .fileNotFound: 404
        case .fileTooLarge: 413
        default: 409
        }
    }

    /// The files API's refusal.
    public init(_ error: ServerFileError) {
        switch error {
        case .notFound: self = .fileNotFound
        case .refused: self = .fileRefused
        case .tooLarge: self = .fileTooLarge
        }
    }

    /// The failure of the game's RCON.
    public init(_ error: RconError) {
        switch error {
        case .settings: self = .rconSettings
        case .unreachable: self = .rconUnreachable
        case .authFailed: self = .rconAuthFailed
        case .protocolViolation: self = .rconProtocol
        case .timeout: self = .rconTimeout
        }
    }
}
