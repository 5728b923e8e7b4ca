internal import CArchive

/// Writes a ustar archive in memory with libarchive: the build context Peon sends to the engine's
/// `POST /build`, made in-process (no shell, no `tar`).
///
/// Entries are regular files only, owned by 0:0 with a fixed mtime, so the same inputs give the
/// same bytes.
public struct TarWriter: Sendable {
    public struct Entry: Sendable, Equatable {
        public let path: String
        public let bytes: [UInt8]
        public let mode: Int

        public init(path: String, bytes: [UInt8], mode: Int = 0o644) {
            self.path = path
            self.bytes = bytes
            self.mode = mode
        }
    }

    public enum Failure: Error, Equatable {
        case archive(String)
    }

    public var entries: [Entry] = []

    public init(entries: [Entry] = []) {
        self.entries = entries
    }

    public mutating func add(_ path: String, _ bytes: [UInt8], mode: Int = 0o644) {
        entries.append(Entry(path: path, bytes: bytes, mode: mode))
    }

    /// The archive's bytes.
    public func bytes() throws(Failure) -> [UInt8] {
        guard let archive = archive_write_new() else { throw .archive("archive_write_new failed") }
        defer { archive_write_free(archive) }
        func check(_ rc: Int32) throws(Failure) {
            guard rc == ARCHIVE_OK else { throw .archive(archive_error_string(archive).map { String(cString: $0) } ?? "error \(rc)") }
        }
        try check(archive_write_set_format_ustar(archive))
        try check(archive_write_add_filter_none(archive))
        // libarchive writes through callbacks into a growing buffer; `Box` keeps it alive for the C side.
        let box = Box()
        let opaque = Unmanaged.passUnretained(box).toOpaque()
        try check(
            archive_write_open2(
                archive, opaque, nil,
                { _, userdata, buffer, length in
                    let box = Unmanaged<Box>.fromOpaque(userdata!).takeUnretainedValue()
                    box.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
                    return la_ssize_t(length)
                }, nil, nil))
        // Byte-identical output for identical inputs: no padding to 10 KiB blocks.
        try check(archive_write_set_bytes_in_last_block(archive, 1))
        for entry in entries {
            guard let header = archive_entry_new() else { throw .archive("archive_entry_new failed") }
            defer { archive_entry_free(header) }
            archive_entry_set_pathname(header, entry.path)
            archive_entry_set_filetype(header, 0o100000)  // AE_IFREG, a macro Swift cannot import
            archive_entry_set_perm(header, mode_t(entry.mode & 0o7777))
            archive_entry_set_size(header, la_int64_t(entry.bytes.count))
            archive_entry_set_uid(header, 0)
            archive_entry_set_gid(header, 0)
            archive_entry_set_mtime(header, 0, 0)
            try check(archive_write_header(archive, header))
            if !entry.bytes.isEmpty {
                let written = entry.bytes.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
                guard written == entry.bytes.count else { throw .archive("short write of \(entry.path)") }
            }
        }
        try check(archive_write_close(archive))
        return withExtendedLifetime(box) { box.bytes }
    }

    private final class Box {
        var bytes: [UInt8] = []
    }
}
