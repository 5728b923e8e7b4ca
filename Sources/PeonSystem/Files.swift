#if canImport(Glibc)
    import Glibc
#endif

/// Why a file operation failed, with the path and errno.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    /// The system's error number behind it (`ENOENT`, `ELOOP`, ...), 0 when Peon refused.
    public let code: Int32
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String, code: Int32 = 0) {
        self.path = path
        self.reason = reason
        self.code = code
    }

    static func errno(_ path: String) -> FileError {
        let code = Glibc.errno
        return FileError(path: path, reason: String(cString: strerror(code)), code: code)
    }
}

/// Bounded, symlink-aware file access for data Peon reads from disk (plans, certificates).
public enum Files {
    /// Reads a regular file, refusing anything larger than `limit` bytes.
    ///
    /// The last component must not be a symlink, and the open never blocks: a FIFO a game server
    /// left in its folder is refused after `fstat` instead of stalling the caller forever.
    public static func read(_ path: String, limit: Int) throws(FileError) -> [UInt8] {
        let fd = open(path, readFlags)
        guard fd >= 0 else { throw .errno(path) }
        defer { close(fd) }
        return try readRegular(fd, path: path, limit: limit)
    }

    public static let readFlags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY

    public static func readRegular(_ fd: Int32, path: String, limit: Int) throws(FileError) -> [UInt8] {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .errno(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, reason: "not a regular file") }
        guard st.st_size <= limit else { throw FileError(path: path, reason: "larger than \(limit) bytes") }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: min(65536, limit + 1))
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

    /// Writes a regular file (created or truncated). The last component must not be a symlink, and
    /// a FIFO in its place fails at once (`O_NONBLOCK`) instead of waiting for a reader.
    public static func write(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws(FileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode)
        guard fd >= 0 else { throw .errno(path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .errno(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, reason: "not a regular file") }
        try writeAll(fd, bytes, path: path)
    }

    /// Writes every byte to `fd` (retrying short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
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

    /// Names in a directory (no `.`/`..`), sorted; empty when it does not exist. At most `limit`
    /// entries are read, so a folder of millions costs no more than `limit`. For Peon's own folders
    /// (an operator may link `plans` elsewhere); folders a game server writes go through
    /// `openDirectory` and the descriptor-relative functions below.
    public static func list(_ path: String, limit: Int = 10_000) -> [String] {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return (try? names(in: fd, path: path, limit: limit))?.sorted() ?? []
    }

    /// Reads up to `limit` names from an open directory; the descriptor stays open and is not moved.
    public static func names(in fd: Int32, path: String, limit: Int = .max) throws(FileError) -> [String] {
        let copy = dup(fd)
        guard copy >= 0 else { throw .errno(path) }
        guard let dir = fdopendir(copy) else {
            let failed = FileError.errno(path)  // before close() can change errno
            close(copy)
            throw failed
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while names.count < limit, let entry = readdir(dir) {
            let name = direntName(entry)
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// The name of a `readdir` entry, read in place: an entry is only as long as its name
    /// (`d_reclen`), so copying the whole `dirent` struct could read past the end of the
    /// directory buffer (it crashed with 70,000 names in a folder a game filled).
    static func direntName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
        return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
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

    /// Whether a regular file has an execute bit set (lstat: a link is never followed).
    public static func isExecutable(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && (st.st_mode & 0o111) != 0
    }

    /// Renames within one file system, atomically replacing nothing: `target` must not exist.
    public static func rename(_ source: String, to target: String) throws(FileError) {
        guard Files.kind(target) == .missing else { throw FileError(path: target, reason: "exists") }
        guard Glibc.rename(source, target) == 0 else { throw .errno(source) }
    }

    /// Makes a new, empty folder `dir/prefixXXXXXX` (mode 0700) and returns its path.
    public static func makeTemporaryDirectory(in dir: String, prefix: String) throws(FileError) -> String {
        try makeDirectories(dir)
        var template = Array((dir + "/" + prefix + "XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw .errno(dir) }
        return String(cString: made)
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

    /// `(name, trimmed text)` of the small UTF-8 regular files in `relative` below `root` that
    /// `include` accepts, sorted by name.
    ///
    /// The folder is reached without following a symlink at any level below `root`, each file is
    /// opened with `O_NOFOLLOW | O_NONBLOCK` and kept only when `fstat` says regular and small, and at
    /// most `maximumEntries` names are read: a game server writes this folder, so nothing in it may
    /// stall or mislead the reader.
    public static func smallTextFiles(
        in relative: String, under root: String, limit: Int = 4096, maximumFiles: Int = 64, maximumEntries: Int = 1024,
        include: (String) -> Bool
    ) -> [(String, String)] {
        textFiles(in: relative, under: root, limit: limit, maximumFiles: maximumFiles, maximumEntries: maximumEntries, include: include)
            .map { ($0.name, $0.text) }
    }

    /// The same, each with whether it looks complete: last changed at least `settleSeconds` ago
    /// and the same size and change time after the read as before. A game that rewrites its config
    /// at start (truncate, then write) is caught between the two by a reader now and then.
    public static func textFiles(
        in relative: String, under root: String, limit: Int = 4096, maximumFiles: Int = 64, maximumEntries: Int = 1024,
        settleSeconds: Int = 2, include: (String) -> Bool
    ) -> [(name: String, text: String, settled: Bool)] {
        guard let dir = try? openDirectory(relative, in: root) else { return [] }
        defer { close(dir) }
        guard let names = try? names(in: dir, path: relative, limit: maximumEntries) else { return [] }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return names.filter(include).sorted().prefix(maximumFiles).compactMap { name in
            let fd = openat(dir, name, readFlags)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var before = stat()
            guard fstat(fd, &before) == 0, let bytes = try? readRegular(fd, path: name, limit: limit),
                let text = String(validating: bytes, as: UTF8.self)
            else {
                return nil
            }
            var after = stat()
            let unchanged =
                fstat(fd, &after) == 0 && after.st_size == before.st_size && after.st_size == bytes.count
                && after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec
            return (name, trimmed(text), unchanged && Int(now.tv_sec) - Int(after.st_mtim.tv_sec) >= settleSeconds)
        }
    }

    /// Opens the directory `relative` below the trusted directory `root`, one component at a time
    /// with `O_NOFOLLOW | O_DIRECTORY`: a symlink at any level below `root` is refused. With
    /// `create`, missing components are made with `mode` (and given to `owner`). The caller closes
    /// the returned descriptor.
    public static func openDirectory(
        _ relative: String, in root: String, create: Bool = false, mode: UInt32 = 0o755, owner: (uid: UInt32, gid: UInt32)? = nil
    ) throws(FileError) -> Int32 {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .errno(root) }
        var path = root
        for part in relative.split(separator: "/") {
            let name = String(part)
            path += "/" + name
            guard name != "..", name != "." else {
                close(fd)
                throw FileError(path: path, reason: "'.' and '..' are not allowed")
            }
            var next = openat(fd, name, directoryFlags)
            if next < 0, Glibc.errno == ENOENT, create {
                if mkdirat(fd, name, mode) != 0, Glibc.errno != EEXIST {
                    let failed = FileError.errno(path)
                    close(fd)
                    throw failed
                }
                next = openat(fd, name, directoryFlags)
                if next >= 0, let owner {
                    // mkdir's mode is filtered by the umask; the game's user needs exactly this one.
                    _ = fchmod(next, mode)
                    _ = fchown(next, owner.uid, owner.gid)
                }
            }
            if next < 0 {
                let code = Glibc.errno
                let failed: FileError =
                    code == ELOOP || code == ENOTDIR
                    ? FileError(path: path, reason: "not a directory (a symlink or a file)", code: code) : .errno(path)
                close(fd)
                throw failed
            }
            close(fd)
            fd = next
        }
        return fd
    }

    static let directoryFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK

    /// Checks a bind-mount source right before a container starts: `relative` below `root` is a
    /// directory (made when missing, for `owner`) or, with `file`, a regular file, and no component
    /// below `root` is a symlink. Docker follows symlinks in bind sources, so one planted by a game
    /// server would otherwise mount any host path into its next container.
    public static func checkBindSource(
        _ relative: String, in root: String, file: Bool = false, owner: (uid: UInt32, gid: UInt32)? = nil
    ) throws(FileError) {
        guard file else {
            close(try openDirectory(relative, in: root, create: true, owner: owner))
            return
        }
        let parent = directory(of: relative)
        let name = String(relative.split(separator: "/").last ?? "")
        let dir = try openDirectory(parent == "." ? "" : parent, in: root)
        defer { close(dir) }
        var st = stat()
        guard !name.isEmpty, fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw .errno(root + "/" + relative) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: root + "/" + relative, reason: "not a regular file") }
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

    /// Deletes a tree without following symlinks (a link is removed, never its target). The
    /// folder holding `path` is trusted; everything below it is handled by descriptor.
    public static func removeTree(_ path: String) throws(FileError) {
        let parent = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else {
            if Glibc.errno == ENOENT { return }
            throw .errno(path)
        }
        defer { close(parent) }
        try removeEntry(String(path.split(separator: "/").last ?? ""), in: parent, path: path, depth: 0, willOpen: nil)
    }

    /// Deletes `relative` below the trusted `root`, following no symlink at any level.
    public static func removeTree(_ relative: String, in root: String) throws(FileError) {
        try removeTree(relative, in: root, willOpen: nil)
    }

    /// Empties the folder `relative` below `root` (kept: it may be a bind-mount source).
    public static func removeContents(_ relative: String, in root: String) throws(FileError) {
        let dir: Int32
        do {
            dir = try openDirectory(relative, in: root)
        } catch {
            if Files.kind(root + "/" + relative) == .missing { return }
            throw error
        }
        defer { close(dir) }
        for name in try names(in: dir, path: relative) {
            try removeEntry(name, in: dir, path: root + "/" + relative + "/" + name, depth: 1, willOpen: nil)
        }
    }

    /// `willOpen` runs before each entry is opened (tests swap folders for symlinks there).
    static func removeTree(_ relative: String, in root: String, willOpen: ((String) -> Void)?) throws(FileError) {
        let parentPath = directory(of: relative)
        let parent: Int32
        do {
            parent = try openDirectory(parentPath == "." ? "" : parentPath, in: root)
        } catch {
            if Files.kind(root + "/" + parentPath) == .missing { return }
            throw error
        }
        defer { close(parent) }
        try removeEntry(
            String(relative.split(separator: "/").last ?? ""), in: parent, path: root + "/" + relative, depth: 0, willOpen: willOpen)
    }

    /// A game server can nest folders without end; deeper trees are refused, not recursed into.
    static let maximumDepth = 256

    /// Removes the entry `name` of the open folder `parent`: a folder is opened with
    /// `O_NOFOLLOW | O_DIRECTORY` and emptied by descriptor; anything else, symlinks included, is
    /// unlinked itself. A folder swapped for a symlink meanwhile loses the link, never its target.
    public static func removeEntry(_ name: String, in parent: Int32, path: String, depth: Int, willOpen: ((String) -> Void)? = nil)
        throws(FileError)
    {
        guard !name.isEmpty, name != ".", name != ".." else { throw FileError(path: path, reason: "not a removable name") }
        willOpen?(path)
        let fd = openat(parent, name, directoryFlags)
        if fd < 0 {
            switch Glibc.errno {
            case ENOENT: return
            case ENOTDIR, ELOOP:
                guard unlinkat(parent, name, 0) == 0 || Glibc.errno == ENOENT else { throw .errno(path) }
                return
            default: throw .errno(path)
            }
        }
        defer { close(fd) }
        guard depth < maximumDepth else { throw FileError(path: path, reason: "more than \(maximumDepth) folders deep") }
        // Names first, then removal: unlinking while a directory stream is open may skip entries.
        for child in try names(in: fd, path: path) {
            try removeEntry(child, in: fd, path: path + "/" + child, depth: depth + 1, willOpen: willOpen)
        }
        if unlinkat(parent, name, AT_REMOVEDIR) != 0 {
            switch Glibc.errno {
            case ENOENT: return
            case ENOTDIR:
                // The folder became a symlink or a file after it was opened: remove that entry.
                guard unlinkat(parent, name, 0) == 0 || Glibc.errno == ENOENT else { throw .errno(path) }
            default: throw .errno(path)
            }
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

extension Files {
    /// A name no one else picked: `.peon-<16 hex digits>-<name>` (made with `O_CREAT|O_EXCL`, so a
    /// link or file a game planted under a guessed name is never written through).
    public static func temporaryName(for name: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let hex = String(rng.next() as UInt64, radix: 16)
        return ".peon-" + String(repeating: "0", count: 16 - hex.count) + hex + "-" + name.prefix(64)
    }

    /// Writes `bytes` to a fresh temporary file in the folder `relative` below `root` (reached
    /// without a symlink at any level) and renames it over `name`: whatever stood at `name` (a
    /// link, a FIFO, a file) is replaced, never opened. With `owner`, a root caller gives it away.
    public static func replace(
        _ name: String, in relative: String, under root: String, _ bytes: [UInt8], mode: UInt32, owner: (uid: UInt32, gid: UInt32)? = nil
    ) throws(FileError) {
        let dir = try openDirectory(relative, in: root)
        defer { close(dir) }
        let temporary = temporaryName(for: name)
        let path = root + "/" + relative + "/" + name
        let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .errno(path) }
        var done = false
        defer {
            close(fd)
            if !done { _ = unlinkat(dir, temporary, 0) }
        }
        try writeAll(fd, bytes, path: path)
        guard fchmod(fd, mode) == 0 else { throw .errno(path) }
        if let owner, geteuid() == 0 { guard fchown(fd, owner.uid, owner.gid) == 0 else { throw .errno(path) } }
        guard renameat(dir, temporary, dir, name) == 0 else { throw .errno(path) }
        done = true
    }
}
