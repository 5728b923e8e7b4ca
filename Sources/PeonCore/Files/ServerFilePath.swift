public import PeonJSON

/// A path inside a server's folder that the files API may reach: relative, below one of the areas
/// (`config/`, `user/`, `actions/`), made of plain names. Parsed the same way at the API (the
/// request's `path`) and again on the node (the operation's), so a node never takes a path the
/// API would refuse.
public struct ServerFilePath: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The folders of a server the files API reaches, and who may do what there.
    public enum Area: String, Sendable, CaseIterable {
        /// The game's configuration (live config reads it): operate keys read and write.
        case config
        /// The user's files (mods, worlds put in by hand): operate keys read and write.
        case user
        /// The plan's actions, run by the game's entry script: admin keys read, nobody writes
        /// (an update reinstalls them).
        case actions

        public var writable: Bool { self != .actions }
    }

    /// In characters (Unicode scalars, as JSON Schema counts them); a name the file system finds
    /// too long in bytes is its refusal.
    public static let maximumLength = 1024
    /// The largest file the files API carries, whatever `PEON_FILE_MAX` says: one node agent frame
    /// holds it, base64.
    public static let maximumFileBytes = 32 << 20
    public static let maximumDepth = 32
    public static let maximumNameLength = 255

    /// The names from the server's folder down: the area first.
    public let components: [String]

    public var area: Area { Area(rawValue: components[0])! }
    /// The last name (the area itself for an area).
    public var name: String { components[components.count - 1] }
    /// The folder that holds it, relative to the server's folder.
    public var parent: String { components.dropLast().joined(separator: "/") }
    /// An area itself, not something in it.
    public var isArea: Bool { components.count == 1 }
    public var description: String { components.joined(separator: "/") }

    /// Parses `text`: `area[/name...]`, one trailing `/` allowed. Refused with a reason the caller
    /// may see: an absolute path, `.` or `..`, an empty name (`a//b`), a control character, a name
    /// over 255 characters, more than 32 levels or 1024 characters, and anything outside the three areas.
    public init(validating text: String) throws(DomainError) {
        func refuse(_ reason: String) -> DomainError { .invalid(field: "path", reason: reason) }
        guard text.unicodeScalars.count <= Self.maximumLength else {
            throw refuse("path is longer than \(Self.maximumLength) characters")
        }
        guard !text.isEmpty else { throw refuse("path is empty") }
        guard !text.hasPrefix("/") else { throw refuse("path must be relative to the server's folder (config/..., user/...)") }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{7f}" }) else {
            throw refuse("path must not contain control characters")
        }
        var trimmed = Substring(text)
        if trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= Self.maximumDepth else { throw refuse("path is deeper than \(Self.maximumDepth) levels") }
        for part in parts {
            guard !part.isEmpty else { throw refuse("path has an empty name (//)") }
            guard part != ".", part != ".." else { throw refuse("path must not contain . or ..") }
            guard part.unicodeScalars.count <= Self.maximumNameLength else {
                throw refuse("a name in path is longer than \(Self.maximumNameLength) characters")
            }
        }
        guard Area(rawValue: parts[0]) != nil else {
            throw refuse("path must be below config/, user/ or actions/")
        }
        components = parts
    }
}

/// One entry of a folder listing.
public struct ServerFileEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case file, directory, link, fifo, socket, device, other
    }

    public let name: String
    public let kind: Kind
    public let size: Int64
    /// Last change, unix seconds.
    public let modified: Int64

    public init(name: String, kind: Kind, size: Int64, modified: Int64) {
        self.name = name
        self.kind = kind
        self.size = size
        self.modified = modified
    }

    /// The node's answer and the job's result: `name`, `type`, `size`, `modified` (unix seconds).
    public var json: JSON {
        ["name": .string(name), "type": .string(kind.rawValue), "size": .int(Int(size)), "modified": .int(Int(modified))]
    }

    /// Read back from `json`; nil for anything else.
    public init?(json: JSON) {
        guard let name = json["name"]?.stringValue, let kind = json["type"]?.stringValue.flatMap(Kind.init(rawValue:)) else { return nil }
        self.init(
            name: name, kind: kind, size: CheckedNumber.integer(json["size"], in: 0...Int64.max) ?? 0,
            modified: CheckedNumber.integer(json["modified"], in: 0...Int64.max) ?? 0)
    }
}

/// Why a file operation was refused: the request's fault, answered with a status of its own.
public enum ServerFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing at the path (or a folder on the way is missing).
    case notFound(String)
    /// A link at some level, a FIFO, a device, a socket; a folder where a file was asked for, or
    /// the other way round.
    case refused(String)
    /// Over `PEON_FILE_MAX`.
    case tooLarge(String)

    public var code: String {
        switch self {
        case .notFound: "file.not_found"
        case .refused: "file.refused"
        case .tooLarge: "file.too_large"
        }
    }

    public var detail: String {
        switch self {
        case .notFound(let m), .refused(let m), .tooLarge(let m): m
        }
    }

    public var description: String { detail }

    /// Read back from its code (the node's answer); nil for an unknown one.
    public init?(code: String, detail: String) {
        switch code {
        case "file.not_found": self = .notFound(detail)
        case "file.refused": self = .refused(detail)
        case "file.too_large": self = .tooLarge(detail)
        default: return nil
        }
    }
}
