#if canImport(Glibc)
    import Glibc
#endif

/// Why a file operation failed, with the path and errno.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }

    static func errno(_ path: String) -> FileError { FileError(path: path, reason: String(cString: strerror(Glibc.errno))) }
}

/// Bounded, symlink-aware file access for data Peon reads from disk (plans, certificates).
public enum Files {
    /// Reads a regular file, refusing anything larger than `limit` bytes.
    public static func read(_ path: String, limit: Int) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .errno(path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .errno(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, reason: "not a regular file") }
        guard st.st_size <= limit else { throw FileError(path: path, reason: "larger than \(limit) bytes") }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .errno(path)
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[..<n])
            if out.count > limit { throw FileError(path: path, reason: "larger than \(limit) bytes") }
        }
        return out
    }

    public static func write(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws(FileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw .errno(path) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw .errno(path)
            }
            offset += n
        }
    }

    /// Names in a directory (no `.`/`..`), sorted; empty when it does not exist.
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public enum Kind { case missing, file, directory, other }

    public static func kind(_ path: String) -> Kind {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// The directory part of a path (`.` for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String, mode: UInt32 = 0o755) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0, Glibc.errno != EEXIST { throw .errno(current) }
        }
    }

    /// `(name, trimmed text)` of the small UTF-8 regular files in `dir` that `include` accepts.
    public static func smallTextFiles(in dir: String, limit: Int = 4096, maximumFiles: Int = 64, include: (String) -> Bool)
        -> [(String, String)]
    {
        list(dir).prefix(maximumFiles).compactMap { name in
            guard include(name), let bytes = try? read(dir + "/" + name, limit: limit), let text = String(validating: bytes, as: UTF8.self)
            else { return nil }
            return (name, trimmed(text))
        }
    }

    static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }

    /// Sets permission bits exactly (mkdir's mode is filtered by the umask).
    public static func setMode(_ path: String, _ mode: UInt32) throws(FileError) {
        guard chmod(path, mode) == 0 else { throw .errno(path) }
    }

    /// Restricts files this process creates: no access for others, none to write for the group.
    public static func restrictUmask() { umask(0o027) }

    /// Gives a file the group `gid` and exactly `mode` (its owner stays).
    public static func setGroup(_ path: String, _ gid: UInt32, mode: UInt32) throws(FileError) {
        guard lchown(path, uid_t.max, gid) == 0 else { throw .errno(path) }
        try setMode(path, mode)
    }

    public static func setOwner(_ path: String, uid: UInt32, gid: UInt32, mode: UInt32) throws(FileError) {
        guard lchown(path, uid, gid) == 0 else { throw .errno(path) }
        try setMode(path, mode)
    }

    /// Lets group `gid` read a tree: its group, plus read (and search, on directories) for the group.
    /// Symlinks are left alone.
    public static func shareTree(_ path: String, gid: UInt32) throws(FileError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try setGroup(path, gid, mode: (st.st_mode & 0o7777) | 0o2050)
            for name in list(path) { try shareTree(path + "/" + name, gid: gid) }
        case S_IFREG: try setGroup(path, gid, mode: (st.st_mode & 0o7777) | 0o040)
        default: return
        }
    }

    /// Deletes a tree without following symlinks (a link is removed, never its target).
    public static func removeTree(_ path: String) throws(FileError) {
        switch kind(path) {
        case .missing: return
        case .directory:
            for name in list(path) { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 else { throw .errno(path) }
        default:
            guard unlink(path) == 0 else { throw .errno(path) }
        }
    }

    /// Gives a tree to a user and group (symlinks themselves, never their targets).
    public static func chownTree(_ path: String, uid: UInt32, gid: UInt32) throws(FileError) {
        guard lchown(path, uid, gid) == 0 else { throw .errno(path) }
        if kind(path) == .directory {
            for name in list(path) { try chownTree(path + "/" + name, uid: uid, gid: gid) }
        }
    }

    /// Copies a tree of regular files and directories; symlinks and special files are skipped.
    public static func copyTree(from source: String, to target: String) throws(FileError) {
        try makeDirectories(target)
        for name in list(source) {
            let s = source + "/" + name
            let t = target + "/" + name
            switch kind(s) {
            case .directory: try copyTree(from: s, to: t)
            case .file: try write(t, read(s, limit: 64 << 20))
            default: continue
            }
        }
    }
}
