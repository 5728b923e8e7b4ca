internal import CArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Extracts a tar(.gz) into a folder that it creates, keeping only regular files and folders.
///
/// Any link, device, FIFO or socket member, absolute path, `..` or duplicate refuses the whole
/// archive: a plan source that carries one is broken or hostile, and half a catalog is worse than
/// the previous one. Sizes are counted as written, so a header that lies about a size gains nothing.
public enum ArchiveExtractor {
    /// What was written.
    public struct Summary: Sendable, Equatable {
        public var entries = 0
        public var files = 0
        public var bytes = 0
    }

    /// Extracts `bytes` into `target`, which must not exist yet. On a throw, `target` may hold
    /// part of the archive: the caller removes it.
    @discardableResult
    public static func extract(_ bytes: [UInt8], into target: String, limits: ArchiveLimits = ArchiveLimits()) throws(ArchiveError)
        -> Summary
    {
        guard mkdir(target, 0o755) == 0 else { throw .io(path: target, reason: String(cString: strerror(errno))) }
        return try extract(try ArchiveReader(bytes: bytes), into: target, limits: limits)
    }

    /// Extracts the archive file at `path` (a backup: tar.zst, tar.gz or zip) into `target`, which
    /// must not exist yet, with the same refusals and limits.
    @discardableResult
    public static func extract(file path: String, into target: String, limits: ArchiveLimits = ArchiveLimits()) throws(ArchiveError)
        -> Summary
    {
        guard mkdir(target, 0o755) == 0 else { throw .io(path: target, reason: String(cString: strerror(errno))) }
        return try extract(try ArchiveReader(path: path), into: target, limits: limits)
    }

    /// Extracts the archive file at `path` into `target` as above, reading the file once, on a
    /// thread of its own, that hands every byte of it, in order and to its very end, to `observe`
    /// (a checksum) beside the extraction. `observe` has seen the whole file when this returns or
    /// throws, so the caller can check the checksum either way (a refused archive whose checksum
    /// does not match is a changed file first). On a throw, `target` may hold part of the archive,
    /// and so may it when the checksum then does not match: the caller removes it.
    @discardableResult
    public static func extract(
        file path: String, into target: String, limits: ArchiveLimits = ArchiveLimits(),
        observe: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) throws(ArchiveError) -> Summary {
        try extract(feeder: try BlockFeeder(path: path, observe: observe), label: path, into: target, limits: limits)
    }

    /// The same, reading the archive from the open descriptor `fd` (a file or a pipe) to its end;
    /// `fd` stays the caller's.
    @discardableResult
    public static func extract(
        descriptor fd: Int32, into target: String, limits: ArchiveLimits = ArchiveLimits(),
        observe: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) throws(ArchiveError) -> Summary {
        try extract(feeder: try BlockFeeder(descriptor: fd, observe: observe), label: "descriptor \(fd)", into: target, limits: limits)
    }

    static func extract(feeder: BlockFeeder, label path: String, into target: String, limits: ArchiveLimits) throws(ArchiveError)
        -> Summary
    {
        guard mkdir(target, 0o755) == 0 else { throw .io(path: target, reason: String(cString: strerror(errno))) }
        var outcome: Result<Summary, ArchiveError>
        do throws(ArchiveError) {
            let reader = try ArchiveReader(feeder: feeder)
            outcome = .success(try extract(reader, into: target, limits: limits))
        } catch {
            outcome = .failure(error)
        }
        // Always to the end: bytes after the archive's end (libarchive stops at it) count too.
        if let problem = feeder.finish() { throw .io(path: path, reason: problem) }
        return try outcome.get()
    }

    static func extract(_ reader: ArchiveReader, into target: String, limits: ArchiveLimits) throws(ArchiveError) -> Summary {
        var summary = Summary()
        // 128 KiB: the chunk stays in the core's cache between libarchive's copy and write().
        // Extracting 1 GiB with 1 MiB chunks cost up to 1.2 s of kernel time here against 0.25 s
        // with 64-256 KiB ones (docs/benchmarks.md).
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 << 10, alignment: 16)
        defer { chunk.deallocate() }
        while let entry = try reader.next() {
            summary.entries += 1
            guard summary.entries <= limits.maximumEntries else { throw .tooManyEntries(limit: limits.maximumEntries) }
            let raw = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry)
            let name = raw.map { String(cString: $0) } ?? ""
            let parts = try components(name)
            if archive_entry_hardlink(entry) != nil { throw .refusedEntry(path: name, reason: "hard link") }
            if archive_entry_symlink(entry) != nil { throw .refusedEntry(path: name, reason: "symbolic link") }
            let type = UInt32(archive_entry_filetype(entry))
            switch type {
            case UInt32(Glibc.S_IFDIR):
                try makeDirectories(target, parts, name: name)
            case UInt32(Glibc.S_IFREG):
                guard !parts.isEmpty else { throw .refusedEntry(path: name, reason: "empty name") }
                try makeDirectories(target, parts.dropLast(), name: name)
                let executable = (archive_entry_perm(entry) & 0o111) != 0
                let path = target + "/" + parts.joined(separator: "/")
                summary.bytes += try write(
                    reader, to: path, name: name, executable: executable, chunk: chunk, already: summary.bytes, limits: limits)
                summary.files += 1
            case UInt32(Glibc.S_IFLNK): throw .refusedEntry(path: name, reason: "symbolic link")
            case UInt32(Glibc.S_IFCHR), UInt32(Glibc.S_IFBLK): throw .refusedEntry(path: name, reason: "device")
            case UInt32(Glibc.S_IFIFO): throw .refusedEntry(path: name, reason: "FIFO")
            case UInt32(Glibc.S_IFSOCK): throw .refusedEntry(path: name, reason: "socket")
            default: throw .refusedEntry(path: name, reason: "not a regular file or folder")
            }
        }
        return summary
    }

    /// The path's components without `.` and empty ones; refuses absolute paths and `..`.
    static func components(_ name: String) throws(ArchiveError) -> [String] {
        guard !name.isEmpty, name.utf8.count <= 4096 else { throw .refusedEntry(path: String(name.prefix(200)), reason: "bad name length") }
        guard !name.hasPrefix("/") else { throw .refusedEntry(path: name, reason: "absolute path") }
        let parts = name.split(separator: "/").map(String.init).filter { $0 != "." }
        if parts.contains("..") { throw .refusedEntry(path: name, reason: "'..' in path") }
        if parts.contains(where: { $0.utf8.count > 255 }) { throw .refusedEntry(path: name, reason: "name longer than 255 bytes") }
        return parts
    }

    /// `mkdir -p` below `root`; every existing component must be a real folder (this tree is
    /// fresh and holds no links, so none can point elsewhere).
    static func makeDirectories(_ root: String, _ parts: some Collection<String>, name: String) throws(ArchiveError) {
        var path = root
        for part in parts {
            path += "/" + part
            // The modes a fresh server folder has, whatever the process's umask (the scheduler's is
            // 027): the API workers and the game read restored trees as they read new ones.
            if mkdir(path, 0o755) == 0, chmod(path, 0o755) == 0 { continue }
            var st = stat()
            guard errno == EEXIST, lstat(path, &st) == 0, (st.st_mode & Glibc.S_IFMT) == Glibc.S_IFDIR else {
                throw .refusedEntry(path: name, reason: "a file and a folder share a path")
            }
        }
    }

    /// Writes the current entry's data to a new file, counting the bytes as they are written.
    static func write(
        _ reader: ArchiveReader, to path: String, name: String, executable: Bool, chunk: UnsafeMutableRawBufferPointer, already: Int,
        limits: ArchiveLimits
    ) throws(ArchiveError) -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw .refusedEntry(path: name, reason: "appears twice") }
            throw .io(path: name, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        guard fchmod(fd, executable ? 0o755 : 0o644) == 0 else { throw .io(path: name, reason: String(cString: strerror(errno))) }
        var written = 0
        while true {
            let n = try reader.read(into: chunk)
            if n == 0 { return written }
            written += n
            guard already + written <= limits.maximumBytes else { throw .tooLarge(limit: limits.maximumBytes) }
            var offset = 0
            while offset < n {
                let w = Glibc.write(fd, chunk.baseAddress! + offset, n - offset)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw .io(path: name, reason: String(cString: strerror(errno)))
                }
                offset += w
            }
        }
    }
}

extension ArchiveExtractor {
    /// Reads every entry of the archive file at `path` to its end without writing anything: a
    /// backup is checked this way right after it is written (a truncated or corrupt stream throws).
    @discardableResult
    public static func verify(file path: String) throws(ArchiveError) -> Summary {
        let reader = try ArchiveReader(path: path)
        var summary = Summary()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { chunk.deallocate() }
        while try reader.next() != nil {
            summary.entries += 1
            while true {
                let n = try reader.read(into: chunk)
                if n == 0 { break }
                summary.bytes += n
            }
        }
        return summary
    }
}
