/// One file of a plan's `actions/` folder, as it will be copied into a server's `actions/`.
public struct PlanFile: Sendable, Equatable {
    /// Relative to `actions/`, `/`-separated (`server_start`, `lib/common.sh`).
    public let path: String
    public let bytes: [UInt8]
    public let executable: Bool

    public init(path: String, bytes: [UInt8], executable: Bool) {
        self.path = path
        self.bytes = bytes
        self.executable = executable
    }
}

/// A plan's `actions/` folder, validated: what the runtime runs (`server_start`, `init_custom`)
/// and whatever else the scripts read.
///
/// The files are copied into every server of the plan, where a runtime running as root at first
/// boot may read them, so names and sizes are checked here, once, for every source (folder,
/// mirror, archive).
public struct PlanActions: Sendable, Equatable {
    public let files: [PlanFile]

    /// At most this many files in `actions/`.
    public static let maximumFiles = 64
    /// At most this many bytes in one file.
    public static let maximumFileBytes = 1 << 20
    /// At most this many bytes in all files together.
    public static let maximumTotalBytes = 4 << 20
    /// At most this many path components (`a/b/c/d`).
    public static let maximumDepth = 4

    public static let serverStart = "server_start"
    public static let initCustom = "init_custom"

    public static let none = PlanActions(checked: [])

    private init(checked files: [PlanFile]) { self.files = files }

    /// Validates the files of a plan's `actions/` for `runtime`; every problem is reported.
    public init(files: [PlanFile], runtime: PlanRuntime) throws(PlanError) {
        var problems: [String] = []
        if files.count > Self.maximumFiles { problems.append("actions/ holds more than \(Self.maximumFiles) files") }
        var seen = Set<String>()
        var total = 0
        for file in files {
            if !Self.isSafePath(file.path) {
                problems.append(
                    "actions/\(Identifier.quoted(file.path)): file names must be letters, digits, '.', '_' or '-', not start with '.'")
            } else if !seen.insert(file.path).inserted {
                problems.append("actions/\(file.path): listed twice")
            }
            if file.bytes.count > Self.maximumFileBytes {
                problems.append("actions/\(Identifier.quoted(file.path)): larger than \(Self.maximumFileBytes) bytes")
            }
            total += file.bytes.count
        }
        if total > Self.maximumTotalBytes { problems.append("actions/ holds more than \(Self.maximumTotalBytes) bytes") }
        if runtime != .image, !seen.contains(Self.serverStart) {
            problems.append("actions/server_start is required by the \(runtime.rawValue) runtime")
        }
        for name in [Self.serverStart, Self.initCustom] {
            if let file = files.first(where: { $0.path == name }), String(validating: file.bytes, as: UTF8.self) == nil {
                problems.append("actions/\(name) must be UTF-8 text")
            }
        }
        // A directory and a file of the same name cannot both be copied.
        for path in seen where seen.contains(where: { $0.hasPrefix(path + "/") }) {
            problems.append("actions/\(path) is both a file and a folder")
        }
        guard problems.isEmpty else { throw PlanError(problems) }
        // The runtime's entry points are executable whatever mode a copy or an archive lost.
        self.files = files.map { file in
            [Self.serverStart, Self.initCustom].contains(file.path) && !file.executable
                ? PlanFile(path: file.path, bytes: file.bytes, executable: true) : file
        }.sorted { $0.path < $1.path }
    }

    /// Safe relative path: 1 to `maximumDepth` components, each a safe name.
    public static func isSafePath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return (1...maximumDepth).contains(parts.count) && path.utf8.count <= 512 && parts.allSatisfy { isSafeName(String($0)) }
    }

    /// A file or folder name: 1–128 bytes of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`
    /// (no hidden files, `.update` is the runtime's; no option-like names).
    public static func isSafeName(_ name: String) -> Bool {
        guard (1...128).contains(name.utf8.count), let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-")
        else { return false }
        return name.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || "._-".utf8.contains(b)
        }
    }
}
