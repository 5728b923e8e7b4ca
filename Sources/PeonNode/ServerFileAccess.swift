import PeonCore
import PeonJSON
import PeonSystem
import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// The files API's work on a server's folder (`config/`, `user/`, `actions/`): list, read, write,
/// delete. The game writes these folders, so every name is hostile: folders are opened one level
/// at a time with `O_NOFOLLOW` (a link at any level refuses the request), files without blocking
/// (a FIFO is refused after `fstat`, never read), sizes and counts are bounded, and a write is a
/// fresh temporary name (`O_CREAT|O_EXCL`) renamed over the path.
struct ServerFileAccess {
    static let games: (uid: UInt32, gid: UInt32) = (1000, 1000)

    let files: LocalServerFiles
    let uid: ServerUID

    /// The folder's entries, folders first, then by name; Peon's own temporary names are left out.
    func list(_ path: ServerFilePath?, limit: Int) throws(ServerFileError) -> (entries: [ServerFileEntry], truncated: Bool) {
        let dir = try open(folder: path?.description ?? "", shown: path?.description ?? "/")
        defer { close(dir) }
        let names: [String]
        do {
            names = try Files.names(in: dir, path: path?.description ?? "", limit: limit + 1)
        } catch {
            throw .refused("cannot list \(path?.description ?? "/"): \(error.reason)")
        }
        var entries: [ServerFileEntry] = []
        for name in names.prefix(limit) where !name.hasPrefix(".peon-") {
            if path == nil, ServerFilePath.Area(rawValue: name) == nil { continue }
            var st = stat()
            guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            entries.append(
                ServerFileEntry(name: name, kind: Self.kind(st.st_mode), size: Int64(st.st_size), modified: Int64(st.st_mtim.tv_sec)))
        }
        entries.sort { a, b in
            (a.kind == .directory) != (b.kind == .directory) ? a.kind == .directory : a.name < b.name
        }
        return (entries, names.count > limit)
    }

    /// The bytes of a regular file, refused over `limit`.
    func read(_ path: ServerFilePath, limit: Int) throws(ServerFileError) -> [UInt8] {
        guard !path.isArea else { throw .refused("\(path) is a folder") }
        let dir = try open(folder: path.parent, shown: path.description)
        defer { close(dir) }
        let fd = openat(dir, path.name, Files.readFlags)
        guard fd >= 0 else { throw Self.failure(errno, path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Self.failure(errno, path) }
        try Self.requireFile(st.st_mode, path)
        guard st.st_size <= limit else { throw .tooLarge("\(path) is \(st.st_size) bytes, more than the \(limit) allowed") }
        do {
            return try Files.readRegular(fd, path: path.description, limit: limit)
        } catch {
            // It grew past the limit while read.
            throw .tooLarge("\(path) is more than the \(limit) bytes allowed")
        }
    }

    /// Writes `bytes` at `path` (missing folders made for the game's user); answers the size and
    /// the SHA-256 written. An existing file keeps its mode (a script stays executable).
    func write(_ path: ServerFilePath, _ bytes: [UInt8]) throws(ServerFileError) -> (Int, String) {
        guard path.area.writable else { throw .refused("\(path.area.rawValue)/ is read-only: an update reinstalls the plan's actions") }
        guard !path.isArea else { throw .refused("\(path) is a folder") }
        let dir = try open(folder: path.parent, shown: path.description, create: true)
        defer { close(dir) }
        var mode: mode_t = 0o644
        var st = stat()
        if fstatat(dir, path.name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            // A link or a FIFO is replaced by the rename, never written through; a folder is not replaced.
            guard (st.st_mode & S_IFMT) != S_IFDIR else { throw .refused("\(path) is a folder") }
            if (st.st_mode & S_IFMT) == S_IFREG { mode = st.st_mode & 0o777 }
        }
        let temporary = Files.temporaryName(for: path.name)
        let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .refused("cannot write \(path): \(String(cString: strerror(errno)))") }
        var done = false
        defer {
            close(fd)
            if !done { _ = unlinkat(dir, temporary, 0) }
        }
        do {
            try Files.writeAll(fd, bytes, path: path.description)
        } catch {
            throw .refused("cannot write \(path): \(error.reason)")
        }
        if geteuid() == 0 { _ = fchown(fd, Self.games.uid, Self.games.gid) }
        // Durable before it replaces the old file: a crash leaves the old one or the new one.
        guard fchmod(fd, mode) == 0, fsync(fd) == 0, renameat(dir, temporary, dir, path.name) == 0 else {
            throw .refused("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        done = true
        let digest = SHA256Digest()
        bytes.withUnsafeBytes { digest.update($0) }
        return (bytes.count, digest.finalize())
    }

    /// Removes a file, a link itself, or a folder and all it holds (by descriptor: a folder swapped
    /// for a link meanwhile loses the link, never its target). An area itself stays.
    func delete(_ path: ServerFilePath) throws(ServerFileError) {
        guard path.area.writable else { throw .refused("\(path.area.rawValue)/ is read-only: an update reinstalls the plan's actions") }
        guard !path.isArea else { throw .refused("\(path) is one of the server's folders: delete what it holds instead") }
        let dir = try open(folder: path.parent, shown: path.description)
        defer { close(dir) }
        var st = stat()
        guard fstatat(dir, path.name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw Self.failure(errno, path) }
        do {
            try Files.removeEntry(path.name, in: dir, path: path.description, depth: 1)
        } catch {
            throw .refused("cannot delete \(path): \(error.reason)")
        }
    }

    // MARK: - Steps

    /// The folder `relative` (below the server's folder) open by descriptor, no link at any level.
    func open(folder relative: String, shown: String, create: Bool = false) throws(ServerFileError) -> Int32 {
        guard Files.kind(files.directory(uid)) == .directory else { throw .notFound("server \(uid) has no folder on this node") }
        do {
            return try Files.openDirectory(
                uid.relativeDirectory + (relative.isEmpty ? "" : "/" + relative), in: files.serversDir, create: create, mode: 0o755,
                owner: create && geteuid() == 0 ? Self.games : nil)
        } catch {
            switch error.code {
            case ENOENT: throw .notFound("\(shown): no such file or folder")
            case ELOOP, ENOTDIR: throw .refused("\(shown): a folder on the way is a link or a file")
            default: throw .refused("\(shown): \(error.reason)")
            }
        }
    }

    static func failure(_ code: Int32, _ path: ServerFilePath) -> ServerFileError {
        switch code {
        case ENOENT: .notFound("\(path): no such file or folder")
        case ELOOP: .refused("\(path) is a link")
        default: .refused("\(path): \(String(cString: strerror(code)))")
        }
    }

    static func requireFile(_ mode: mode_t, _ path: ServerFilePath) throws(ServerFileError) {
        switch kind(mode) {
        case .file: return
        case .directory: throw .refused("\(path) is a folder")
        case let other: throw .refused("\(path) is a \(other.rawValue), not a regular file")
        }
    }

    static func kind(_ mode: mode_t) -> ServerFileEntry.Kind {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .link
        case S_IFIFO: .fifo
        case S_IFSOCK: .socket
        case S_IFCHR, S_IFBLK: .device
        default: .other
        }
    }
}

extension ServerFileError {
    /// The node's answer for a refused file operation (the request's fault, not the node's).
    var json: JSON { ["file_error": .string(code), "detail": .string(detail)] }
}
