internal import CArchive

/// One libarchive read handle over a copy of the archive's bytes (tar, optionally gzip), confined
/// to the thread that made it; both are freed in deinit.
final class ArchiveReader {
    let handle: OpaquePointer
    private let buffer: UnsafeMutableRawBufferPointer
    /// Feeds the archive's bytes when it was opened with one (kept alive for the callbacks).
    private(set) var feeder: BlockFeeder?

    /// Opens a backup archive on disk: tar (zstd or gzip) or zip.
    init(path: String) throws(ArchiveError) {
        handle = try Self.backupHandle()
        buffer = .allocate(byteCount: 1, alignment: 16)
        guard archive_read_open_filename(handle, path, 1 << 16) == ARCHIVE_OK else { throw .unreadable(message) }
    }

    /// Opens a backup archive whose bytes `feeder` reads (and checksums) on its own thread.
    init(feeder: BlockFeeder) throws(ArchiveError) {
        handle = try Self.backupHandle()
        self.feeder = feeder
        buffer = .allocate(byteCount: 1, alignment: 16)
        feeder.start()
        let rc = archive_read_open2(
            handle, Unmanaged.passUnretained(feeder).toOpaque(), nil,
            { _, client, out in
                let feeder = Unmanaged<BlockFeeder>.fromOpaque(client!).takeUnretainedValue()
                guard let block = feeder.next() else { return -1 }
                out?.pointee = UnsafeRawPointer(block.baseAddress)
                return la_ssize_t(block.count)
            }, nil, nil)
        guard rc == ARCHIVE_OK else { throw .unreadable(message) }
    }

    /// A read handle for the formats backups are written in: tar (zstd or gzip) or zip.
    private static func backupHandle() throws(ArchiveError) -> OpaquePointer {
        guard let handle = archive_read_new() else { throw .unreadable("out of memory") }
        archive_read_support_filter_zstd(handle)
        archive_read_support_filter_gzip(handle)
        archive_read_support_format_tar(handle)
        archive_read_support_format_zip(handle)
        return handle
    }

    init(bytes: [UInt8]) throws(ArchiveError) {
        guard let handle = archive_read_new() else { throw .unreadable("out of memory") }
        self.handle = handle
        buffer = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        buffer.copyBytes(from: bytes)
        // Only what a warplans archive needs: a smaller parser surface than "all formats".
        archive_read_support_filter_gzip(handle)
        archive_read_support_format_tar(handle)
        guard archive_read_open_memory(handle, buffer.baseAddress, bytes.count) == ARCHIVE_OK else {
            throw .unreadable(message)
        }
    }

    deinit {
        archive_read_free(handle)
        buffer.deallocate()
    }

    var message: String {
        archive_error_string(handle).map { String(cString: $0) } ?? "unknown error"
    }

    /// The next entry's header, or nil at the end.
    func next() throws(ArchiveError) -> OpaquePointer? {
        var entry: OpaquePointer?
        let rc = archive_read_next_header(handle, &entry)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else { throw .unreadable(message) }
        return entry
    }

    /// Reads the current entry's data into `chunk`; 0 at its end.
    func read(into chunk: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let n = archive_read_data(handle, chunk.baseAddress, chunk.count)
        guard n >= 0 else { throw .unreadable(message) }
        return n
    }
}

@available(*, unavailable)
extension ArchiveReader: Sendable {}
