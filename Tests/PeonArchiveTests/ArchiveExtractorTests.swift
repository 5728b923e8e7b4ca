import CArchive
import Glibc
import PeonArchive
import Testing

/// One member of a test archive.
struct Member {
    enum Kind {
        case file([UInt8])
        case folder
        case symlink(String)
        case hardlink(String)
        case fifo, device
    }
    let path: String
    let kind: Kind
    var mode: UInt32 = 0o644
}

/// Writes a .tar.gz with libarchive's writer (pax format), exactly as built here, hostile members included.
func makeArchive(_ members: [Member]) throws -> [UInt8] {
    let path = "/tmp/peon-archive-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar.gz"
    defer { unlink(path) }
    let writer = archive_write_new()!
    defer { archive_write_free(writer) }
    archive_write_add_filter_gzip(writer)
    archive_write_set_format_pax_restricted(writer)
    #expect(archive_write_open_filename(writer, path) == ARCHIVE_OK)
    for member in members {
        let entry = archive_entry_new()!
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, member.path)
        archive_entry_set_perm(entry, mode_t(member.mode))
        var data: [UInt8] = []
        switch member.kind {
        case .file(let bytes):
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
            archive_entry_set_size(entry, Int64(bytes.count))
            data = bytes
        case .folder: archive_entry_set_filetype(entry, UInt32(Glibc.S_IFDIR))
        case .symlink(let target):
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFLNK))
            archive_entry_set_symlink(entry, target)
        case .hardlink(let target):
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
            archive_entry_set_hardlink(entry, target)
        case .fifo: archive_entry_set_filetype(entry, UInt32(Glibc.S_IFIFO))
        case .device:
            archive_entry_set_filetype(entry, UInt32(Glibc.S_IFCHR))
            archive_entry_set_rdevmajor(entry, 1)
            archive_entry_set_rdevminor(entry, 3)
        }
        #expect(archive_write_header(writer, entry) == ARCHIVE_OK)
        if !data.isEmpty { _ = data.withUnsafeBytes { archive_write_data(writer, $0.baseAddress, $0.count) } }
    }
    archive_write_close(writer)
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        out += buffer[..<n]
    }
    return out
}

func freshTarget() -> String {
    var template = Array("/tmp/peon-extract-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return dir + "/tree"
}

func contents(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_NOFOLLOW)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    let n = read(fd, &buffer, buffer.count)
    return Array(buffer[..<max(n, 0)])
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & Glibc.S_IFMT) == Glibc.S_IFDIR, let dir = opendir(path) {
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

@Suite struct ArchiveExtractorTests {
    @Test func extractsFilesAndFolders() throws {
        let bytes = try makeArchive([
            Member(path: "warplans-main/", kind: .folder, mode: 0o755),
            Member(path: "warplans-main/plans.json", kind: .file(Array("[]".utf8))),
            Member(path: "./warplans-main/game/actions/server_start", kind: .file(Array("#!/bin/sh\n".utf8)), mode: 0o755),
            Member(path: "warplans-main/empty", kind: .file([])),
        ])
        let target = freshTarget()
        defer { removeTree(target + "/..") }
        let summary = try ArchiveExtractor.extract(bytes, into: target)
        #expect(summary.files == 3 && summary.entries == 4 && summary.bytes == 12)
        #expect(contents(target + "/warplans-main/plans.json") == Array("[]".utf8))
        #expect(contents(target + "/warplans-main/empty") == [])
        var st = stat()
        #expect(lstat(target + "/warplans-main/game/actions/server_start", &st) == 0 && (st.st_mode & 0o111) != 0)
    }

    /// A restore run by the scheduler (umask 027) gives the modes a fresh server folder has: the
    /// API workers and the game read restored trees as they read new ones.
    @Test func extractedModesDoNotDependOnTheUmask() throws {
        let bytes = try makeArchive([
            Member(path: "config/", kind: .folder, mode: 0o700),
            Member(path: "config/server.cfg", kind: .file(Array("x".utf8)), mode: 0o600),
            Member(path: "config/deep/run.sh", kind: .file(Array("#!/bin/sh\n".utf8)), mode: 0o700),
        ])
        let target = freshTarget()
        defer { removeTree(target + "/..") }
        let previous = umask(0o027)
        defer { umask(previous) }
        try ArchiveExtractor.extract(bytes, into: target)
        func mode(_ path: String) -> mode_t {
            var st = stat()
            return lstat(target + "/" + path, &st) == 0 ? st.st_mode & 0o7777 : 0
        }
        #expect(mode("config") == 0o755 && mode("config/deep") == 0o755)
        #expect(mode("config/server.cfg") == 0o644)
        #expect(mode("config/deep/run.sh") == 0o755)
    }

    static let hostile: [(String, [Member], String)] = [
        ("symlink", [Member(path: "a/link", kind: .symlink("/etc/passwd"))], "symbolic link"),
        ("hard link", [Member(path: "a/f", kind: .file([1])), Member(path: "a/g", kind: .hardlink("a/f"))], "hard link"),
        ("fifo", [Member(path: "a/pipe", kind: .fifo)], "FIFO"),
        ("device", [Member(path: "a/null", kind: .device)], "device"),
        ("absolute", [Member(path: "/tmp/peon-escape", kind: .file([1]))], "absolute path"),
        ("dot-dot", [Member(path: "a/../../escape", kind: .file([1]))], "'..'"),
        ("twice", [Member(path: "a/f", kind: .file([1])), Member(path: "a/f", kind: .file([2]))], "appears twice"),
    ]

    @Test(arguments: 0..<hostile.count) func refusesHostileMembers(index: Int) throws {
        let (label, members, reason) = Self.hostile[index]
        let target = freshTarget()
        defer { removeTree(target + "/..") }
        #expect(throws: ArchiveError.self, "\(label)") { try ArchiveExtractor.extract(try makeArchive(members), into: target) }
        do {
            try ArchiveExtractor.extract(try makeArchive(members), into: freshTarget())
        } catch let error as ArchiveError {
            #expect("\(error)".contains(reason), "\(label): \(error)")
        }
        #expect(access("/tmp/peon-escape", F_OK) != 0)
    }

    @Test func boundsEntriesAndWrittenBytes() throws {
        let many = (0..<6).map { Member(path: "f\($0)", kind: .file([1])) }
        #expect(throws: ArchiveError.tooManyEntries(limit: 5)) {
            try ArchiveExtractor.extract(try makeArchive(many), into: freshTarget(), limits: ArchiveLimits(maximumEntries: 5))
        }
        let big = [
            Member(path: "a", kind: .file([UInt8](repeating: 7, count: 600))),
            Member(path: "b", kind: .file([UInt8](repeating: 7, count: 600))),
        ]
        #expect(throws: ArchiveError.tooLarge(limit: 1000)) {
            try ArchiveExtractor.extract(try makeArchive(big), into: freshTarget(), limits: ArchiveLimits(maximumBytes: 1000))
        }
    }

    @Test func refusesWhatIsNotAnArchive() {
        #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(Array("not a tarball at all".utf8), into: freshTarget()) }
    }
}

/// What `observe` saw, in order (it runs on the feeder thread; read after the extraction ended).
final class Observed: @unchecked Sendable {
    var bytes: [UInt8] = []
    func add(_ block: UnsafeRawBufferPointer) { bytes += block }
}

func writeFile(_ bytes: [UInt8]) -> String {
    let path = "/tmp/peon-archive-file-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    return path
}

@Suite struct ArchiveFileExtractionTests {
    /// Several times the feeder's ring (4 blocks of 1 MiB), incompressible.
    static let big: [UInt8] = {
        var rng = SystemRandomNumberGenerator()
        return (0..<(6 << 20) / 8).flatMap { _ in withUnsafeBytes(of: rng.next() as UInt64) { Array($0) } }
    }()

    @Test func observesEveryByteOfTheFileOnceAndInOrderIncludingWhatFollowsTheArchive() throws {
        let archive = try makeArchive([
            Member(path: "user/", kind: .folder, mode: 0o755), Member(path: "user/world.bin", kind: .file(Self.big)),
            Member(path: "config/a.txt", kind: .file(Array("a".utf8))),
        ])
        for tail in [[], Array("appended after the archive".utf8)] {
            let path = writeFile(archive + tail)
            defer { unlink(path) }
            let target = freshTarget()
            defer { removeTree(target + "/..") }
            let observed = Observed()
            let summary = try ArchiveExtractor.extract(file: path, into: target, observe: { observed.add($0) })
            #expect(summary.files == 2 && summary.bytes == Self.big.count + 1)
            #expect(observed.bytes == archive + tail)
            var st = stat()
            #expect(lstat(target + "/user/world.bin", &st) == 0 && st.st_size == Self.big.count)
        }
    }

    @Test(arguments: 0..<ArchiveExtractorTests.hostile.count) func refusesHostileMembersAndStillObservesTheWholeFile(index: Int) throws {
        let (label, members, reason) = ArchiveExtractorTests.hostile[index]
        let archive = try makeArchive([Member(path: "user/world.bin", kind: .file(Self.big))] + members)
        let path = writeFile(archive)
        defer { unlink(path) }
        let target = freshTarget()
        defer { removeTree(target + "/..") }
        let observed = Observed()
        do {
            try ArchiveExtractor.extract(file: path, into: target, observe: { observed.add($0) })
            Issue.record("\(label) was extracted")
        } catch {
            #expect("\(error)".contains(reason), "\(label): \(error)")
        }
        #expect(observed.bytes == archive, "\(label)")
        #expect(access("/tmp/peon-escape", F_OK) != 0)
    }

    @Test func refusesAMissingFileOrOneThatIsNotAnArchive() {
        #expect(throws: ArchiveError.self) {
            try ArchiveExtractor.extract(file: "/nonexistent/peon.tar.zst", into: freshTarget(), observe: { _ in })
        }
        let path = writeFile(Array("not a tarball at all".utf8))
        defer { unlink(path) }
        let observed = Observed()
        #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(file: path, into: freshTarget(), observe: { observed.add($0) }) }
        #expect(observed.bytes == Array("not a tarball at all".utf8))
    }
}

extension ArchiveFileExtractionTests {
    /// What `ArchiveWriter` makes (a backup: tar.zst, or PEON's save zip) extracts back, read through the feeder.
    @Test(arguments: [ArchiveWriter.Format.tarZstd, .zip]) func restoresWhatTheWriterMade(_ format: ArchiveWriter.Format) throws {
        let root = freshTarget()
        defer { removeTree(root + "/..") }
        mkdir(root, 0o755)
        mkdir(root + "/user", 0o755)
        mkdir(root + "/user/world", 0o755)
        let fd = open(root + "/user/world/map.bin", O_WRONLY | O_CREAT, 0o644)
        _ = Self.big.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let archive = root + "/../backup." + format.rawValue
        try ArchiveWriter.write(root: root, folders: ["user", "config"], to: archive, format: format)
        let observed = Observed()
        let target = root + "/../restored"
        let summary = try ArchiveExtractor.extract(file: archive, into: target, observe: { observed.add($0) })
        #expect(summary.files == 1 && summary.bytes == Self.big.count)
        var st = stat()
        #expect(lstat(target + "/user/world/map.bin", &st) == 0 && st.st_size == Self.big.count)
        #expect(lstat(archive, &st) == 0 && Int(st.st_size) == observed.bytes.count)
    }
}
