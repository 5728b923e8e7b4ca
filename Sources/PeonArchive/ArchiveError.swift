/// Why an archive was refused, with text safe to show in a refresh report.
public enum ArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libarchive could not read it (not gzip, not tar, truncated), with its message.
    case unreadable(String)
    /// One member is not allowed (link, device, FIFO, absolute path, `..`, duplicate).
    case refusedEntry(path: String, reason: String)
    case tooManyEntries(limit: Int)
    /// More than `limit` bytes were written while unpacking.
    case tooLarge(limit: Int)
    /// Writing the extracted files failed.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let message): "unreadable archive: \(message)"
        case .refusedEntry(let path, let reason): "archive member '\(path)' refused: \(reason)"
        case .tooManyEntries(let limit): "archive has more than \(limit) entries"
        case .tooLarge(let limit): "archive unpacks to more than \(limit) bytes"
        case .io(let path, let reason): "cannot extract \(path): \(reason)"
        }
    }
}
