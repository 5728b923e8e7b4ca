import CArchive
import PeonArchive
import Testing

/// The tar writer against libarchive's own reader: names, modes, contents, and stable bytes.
@Suite struct TarWriterTests {
    @Test func writesFilesThatLibarchiveReadsBack() throws {
        var tar = TarWriter()
        tar.add("Dockerfile", Array("FROM scratch\n".utf8))
        tar.add("entry.sh", Array("#!/bin/bash\nexit 0\n".utf8), mode: 0o755)
        tar.add("empty", [])
        tar.add("big", [UInt8](repeating: 7, count: 70_000))
        let bytes = try tar.bytes()
        #expect(bytes.count % 512 == 0)
        #expect(try tar.bytes() == bytes, "same inputs, same bytes (image tags and caches rely on it)")

        let read = archive_read_new()!
        defer { archive_read_free(read) }
        archive_read_support_format_tar(read)
        var entries: [(String, Int, [UInt8])] = []
        try bytes.withUnsafeBytes { buffer in
            #expect(archive_read_open_memory(read, buffer.baseAddress, buffer.count) == ARCHIVE_OK)
            var entry: OpaquePointer?
            while archive_read_next_header(read, &entry) == ARCHIVE_OK {
                let name = String(cString: archive_entry_pathname(entry))
                let mode = Int(archive_entry_perm(entry))
                var data = [UInt8](repeating: 0, count: Int(archive_entry_size(entry)))
                if !data.isEmpty {
                    let n = data.withUnsafeMutableBytes { archive_read_data(read, $0.baseAddress, $0.count) }
                    guard n == data.count else { throw TarWriter.Failure.archive("short read") }
                }
                entries.append((name, mode, data))
            }
        }
        #expect(entries.map(\.0) == ["Dockerfile", "entry.sh", "empty", "big"])
        #expect(entries.map(\.1) == [0o644, 0o755, 0o644, 0o644])
        #expect(entries[0].2 == Array("FROM scratch\n".utf8) && entries[3].2.count == 70_000 && entries[2].2.isEmpty)
    }
}
