/// What the scheduler can be asked to do to a server. API workers write these as jobs; only the
/// scheduler carries them out.
public enum JobKind: String, Sendable, CaseIterable {
    case create, start, stop, restart, update, destroy, eradicate
    /// Adopt server directories and labelled containers the store does not know (server uid `*`).
    case adopt
    /// Type a line into the game's console (`arguments.command`).
    case console
    /// Archive the server's actions, config and user files (`arguments.format`: `tar.zst` or `zip`).
    case backup
    /// Put a backup's files back (`arguments.id`), stopping and starting the server around it.
    case restore
    /// Remove one backup (`arguments.id`).
    case deleteBackup = "delete_backup"
    /// Apply the server's backup retention policy now (it changed).
    case pruneBackups = "prune_backups"
    /// The files API: list a folder, read, write or delete a file of the server's (`arguments.path`).
    case listFiles = "files"
    case readFile = "file_read"
    case writeFile = "file_write"
    case deleteFile = "file_delete"

    /// The files API's kinds: short, run by a runner of their own beside the server's actions
    /// (a file read does not wait out a backup), never setting a state.
    public static let fileKinds: [JobKind] = [.listFiles, .readFile, .writeFile, .deleteFile]
    public var isFileAccess: Bool { Self.fileKinds.contains(self) }

    /// The desired state a job leaves behind, when it sets one.
    public var desiredState: String? {
        switch self {
        case .create, .update, .destroy, .eradicate, .adopt, .console, .backup, .restore, .deleteBackup, .pruneBackups, .listFiles,
            .readFile, .writeFile, .deleteFile:
            nil
        case .start, .restart: "running"
        case .stop: "stopped"
        }
    }
}

/// A job's lifecycle on its row.
public enum JobState: String, Sendable {
    case queued, running, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}
