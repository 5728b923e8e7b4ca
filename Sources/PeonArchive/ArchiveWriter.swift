internal import CArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Writes folders of a server directory into an archive file, streaming from disk.
///
/// A game server may still be writing the tree: it is walked by descriptor (`openat` with
/// `O_NOFOLLOW` at every level), so a folder swapped for a symlink is never followed out of it;
/// only regular files and folders are archived (links, FIFOs and devices are skipped, a FIFO is
/// never opened for reading), and a file is read for at most the size its header states.
public enum ArchiveWriter {
    public enum Format: String, Sendable {
        /// tar (pax) compressed with zstd: Peon's backups.
        case tarZstd = "tar.zst"
        /// PEON's save download.
        case zip
    }

    public struct Summary: Sendable, Equatable {
        public var files = 0
        public var bytes = 0
    }

    /// Archives `folders` (names below `root`; missing ones are skipped) into a new file at `path`.
    @discardableResult
    public static func write(root: String, folders: [String], to path: String, format: Format) throws(ArchiveError) -> Summary {
        try write(root: root, folders: folders, format: format, label: path) { archive_write_open_filename($0, path) }
    }

    /// Archives `folders` into the open descriptor `fd` (a file, a pipe, a socket), which stays open.
    @discardableResult
    public static func write(root: String, folders: [String], toDescriptor fd: Int32, format: Format) throws(ArchiveError) -> Summary {
        try write(root: root, folders: folders, format: format, label: "descriptor \(fd)") { handle in
            // 128 KiB writes (a pipe's reader wakes less often than for 10 KiB ones), and no padding
            // of the last block: the stream ends where the archive does.
            _ = archive_write_set_bytes_per_block(handle, 128 << 10)
            _ = archive_write_set_bytes_in_last_block(handle, 1)
            return archive_write_open_fd(handle, fd)
        }
    }

    static func write(
        root: String, folders: [String], format: Format, label path: String, opening: (OpaquePointer) -> Int32
    ) throws(ArchiveError) -> Summary {
        guard let handle = archive_write_new() else { throw .unreadable("out of memory") }
        defer { archive_write_free(handle) }
        func check(_ rc: Int32) throws(ArchiveError) {
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else {
                throw .io(path: path, reason: archive_error_string(handle).map { String(cString: $0) } ?? "archive error")
            }
        }
        switch format {
        case .tarZstd:
            try check(archive_write_set_format_pax_restricted(handle))
            try check(archive_write_add_filter_zstd(handle))
        case .zip:
            try check(archive_write_set_format_zip(handle))
        }
        try check(opening(handle))
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw .io(path: root, reason: String(cString: strerror(errno))) }
        defer { close(rootFD) }
        var summary = Summary()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { chunk.deallocate() }
        for folder in folders {
            let fd = openat(rootFD, folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { continue }
            try walk(fd, prefix: folder, depth: 0, handle: handle, chunk: chunk, summary: &summary, check: check)
        }
        try check(archive_write_close(handle))
        return summary
    }

    /// Archives the folder open at `fd` (closed here) as `prefix`.
    static func walk(
        _ fd: Int32, prefix: String, depth: Int, handle: OpaquePointer, chunk: UnsafeMutableRawBufferPointer, summary: inout Summary,
        check: (Int32) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        guard depth < 64, let dir = fdopendir(fd) else {
            close(fd)
            return
        }
        defer { closedir(dir) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        try header(handle, prefix, st, check: check)
        var names: [String] = []
        while let entry = readdir(dir) {
            // Read in place: an entry is only as long as its name, the struct's copy could read past the buffer.
            let name = String(
                cString: (UnsafeRawPointer(entry) + (MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19)).assumingMemoryBound(
                    to: CChar.self))
            if name != ".", name != ".." { names.append(name) }
        }
        for name in names.sorted() {
            let path = prefix + "/" + name
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 {
                    try walk(child, prefix: path, depth: depth + 1, handle: handle, chunk: chunk, summary: &summary, check: check)
                }
            case S_IFREG:
                // O_NONBLOCK: should the entry have become a FIFO since, opening it cannot hang.
                let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                guard file >= 0 else { continue }
                defer { close(file) }
                guard fstat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                try header(handle, path, st, check: check)
                var left = Int(st.st_size)
                while left > 0 {
                    let n = read(file, chunk.baseAddress, min(chunk.count, left))
                    if n < 0, errno == EINTR { continue }
                    if n <= 0 { break }  // the file shrank: libarchive pads the entry to its stated size
                    guard archive_write_data(handle, chunk.baseAddress, n) == n else {
                        throw .io(path: path, reason: archive_error_string(handle).map { String(cString: $0) } ?? "write failed")
                    }
                    left -= n
                }
                summary.files += 1
                summary.bytes += Int(st.st_size)
            default:
                continue
            }
        }
    }

    static func header(_ handle: OpaquePointer, _ path: String, _ st: stat, check: (Int32) throws(ArchiveError) -> Void)
        throws(ArchiveError)
    {
        guard let entry = archive_entry_new() else { throw .unreadable("out of memory") }
        defer { archive_entry_free(entry) }
        let directory = (st.st_mode & S_IFMT) == S_IFDIR
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_filetype(entry, directory ? UInt32(Glibc.S_IFDIR) : UInt32(Glibc.S_IFREG))  // AE_IF* are S_IF*
        archive_entry_set_perm(entry, UInt32(st.st_mode & 0o777))
        archive_entry_set_size(entry, directory ? 0 : Int64(st.st_size))
        archive_entry_set_mtime(entry, st.st_mtim.tv_sec, 0)
        try check(archive_write_header(handle, entry))
    }
}
