import Testing

@testable import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What a game server can leave in the folders Peon reads and deletes: FIFOs, symlinks, folders
/// swapped for symlinks, huge listings. Nothing may block, escape or follow a link.
@Suite struct HostileFilesTests {
    let root: String = {
        var template = Array("/tmp/peon-hostile-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    func cleanup() { try? Files.removeTree(root) }

    @Test func readRefusesAFIFOWithoutBlocking() throws {
        defer { cleanup() }
        #expect(mkfifo(root + "/hang", 0o644) == 0)
        // On the old code this open() blocked forever, waiting for a writer.
        #expect(throws: FileError.self) { try Files.read(root + "/hang", limit: 100) }
    }

    @Test func writeRefusesAFIFOOrALinkWithoutBlocking() throws {
        defer { cleanup() }
        #expect(mkfifo(root + "/peon-server.json", 0o644) == 0)
        #expect(throws: FileError.self) { try Files.write(root + "/peon-server.json", [1]) }
        symlink("/etc/hostname", root + "/link")
        #expect(throws: FileError.self) { try Files.write(root + "/link", [1]) }
        try Files.write(root + "/plain", [1, 2])
        #expect(try Files.read(root + "/plain", limit: 2) == [1, 2])
    }

    @Test func smallTextFilesSkipFIFOsLinksAndBigFiles() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/servers/g/s/config")
        let config = root + "/servers/g/s/config"
        try Files.write(config + "/state", Array("STARTED\n".utf8))
        try Files.write(config + "/big", [UInt8](repeating: 65, count: 10000))
        #expect(mkfifo(config + "/hang", 0o644) == 0)
        symlink("/etc/hostname", config + "/leak")
        let files = Files.smallTextFiles(in: "g/s/config", under: root + "/servers") { _ in true }
        #expect(files.map(\.0) == ["state"] && files.first?.1 == "STARTED")
    }

    /// A file changed in the last two seconds (a game writing its config at start) is not settled;
    /// the same file, untouched since, is.
    @Test func textFilesSayWhetherAFileIsStillBeingWritten() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/servers/g/s/config")
        let config = root + "/servers/g/s/config"
        try Files.write(config + "/fresh", Array("half".utf8))
        try Files.write(config + "/old", Array("whole".utf8))
        var times = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, config + "/old", &times, 0) == 0)
        let files = Files.textFiles(in: "g/s/config", under: root + "/servers") { _ in true }
        #expect(files.map(\.name) == ["fresh", "old"])
        #expect(files.map(\.settled) == [false, true])
    }

    @Test func smallTextFilesRefuseASymlinkedFolder() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/outside")
        try Files.write(root + "/outside/secret", Array("x".utf8))
        try Files.makeDirectories(root + "/servers/g/s")
        symlink(root + "/outside", root + "/servers/g/s/config")
        #expect(Files.smallTextFiles(in: "g/s/config", under: root + "/servers") { _ in true }.isEmpty)
    }

    @Test func listingsAreCapped() throws {
        defer { cleanup() }
        for i in 0..<50 { try Files.write(root + "/f\(i)", []) }
        #expect(Files.list(root, limit: 10).count == 10)
        #expect(Files.smallTextFiles(in: "", under: root, maximumEntries: 20) { _ in true }.count == 20)
    }

    @Test func removeTreeOverAFolderSwappedForASymlinkBeforehand() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/outside/keep")
        try Files.write(root + "/outside/keep/file", [1])
        try Files.makeDirectories(root + "/servers/g/s/data")
        symlink(root + "/outside", root + "/servers/g/s/data/world")
        try Files.removeTree("g/s", in: root + "/servers")
        #expect(Files.kind(root + "/servers/g/s") == .missing)
        #expect(Files.kind(root + "/outside/keep/file") == .file)
    }

    @Test func removeTreeOverAFolderSwappedForASymlinkMidWalk() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/outside/keep")
        try Files.write(root + "/outside/keep/file", [1])
        try Files.makeDirectories(root + "/servers/g/s/data/world/region")
        try Files.write(root + "/servers/g/s/data/world/region/r.0", [1])
        let root = self.root
        var swapped = false
        // Between listing `data` and opening `world`, a running container swaps it for a link.
        try Files.removeTree("g/s", in: root + "/servers") { path in
            guard path.hasSuffix("/data/world"), !swapped else { return }
            swapped = true
            rename(path, root + "/moved")
            symlink(root + "/outside", path)
        }
        #expect(swapped)
        #expect(Files.kind(root + "/servers/g/s") == .missing)
        #expect(Files.kind(root + "/outside/keep/file") == .file)
        #expect(Files.kind(root + "/moved/region/r.0") == .file, "what was moved away is outside the tree being removed")
    }

    @Test func removeTreeRefusesASymlinkOnTheWayDown() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/outside/s/data")
        try Files.write(root + "/outside/s/data/file", [1])
        try Files.makeDirectories(root + "/servers")
        symlink(root + "/outside", root + "/servers/g")
        #expect(throws: FileError.self) { try Files.removeTree("g/s", in: root + "/servers") }
        #expect(Files.kind(root + "/outside/s/data/file") == .file)
        #expect(throws: FileError.self) { try Files.removeContents("g/s/data", in: root + "/servers") }
        #expect(Files.kind(root + "/outside/s/data/file") == .file)
    }

    @Test func removeContentsKeepsTheFolderAndRemovesFIFOs() throws {
        defer { cleanup() }
        try Files.makeDirectories(root + "/s/data/deep/er")
        #expect(mkfifo(root + "/s/data/hang", 0o644) == 0)
        symlink("/etc", root + "/s/data/etc")
        try Files.removeContents("s/data", in: root)
        #expect(Files.kind(root + "/s/data") == .directory && Files.list(root + "/s/data").isEmpty)
        #expect(Files.kind("/etc/hostname") != .missing)
    }

    @Test func bindSourcesMustBeReachedWithoutSymlinks() throws {
        defer { cleanup() }
        try Files.checkBindSource("servers/g/s/data", in: root)
        #expect(Files.kind(root + "/servers/g/s/data") == .directory, "a missing source is made")
        try Files.makeDirectories(root + "/outside")
        symlink(root + "/outside", root + "/servers/g/s/config")
        #expect(throws: FileError.self) { try Files.checkBindSource("servers/g/s/config", in: root) }
        #expect(throws: FileError.self) { try Files.checkBindSource("servers/g/s/config/sub", in: root) }
        symlink("/etc/passwd", root + "/servers/g/s/server.cfg")
        #expect(throws: FileError.self) { try Files.checkBindSource("servers/g/s/server.cfg", in: root, file: true) }
        try Files.write(root + "/servers/g/s/real.cfg", [1])
        try Files.checkBindSource("servers/g/s/real.cfg", in: root, file: true)
        #expect(throws: FileError.self) { try Files.checkBindSource("servers/../outside", in: root) }
    }

    @Test func deepTreesAreRefusedNotRecursedWithoutEnd() throws {
        defer {
            // Unwind by hand: the tree is deeper than removeTree allows.
            var path = root + "/d"
            for _ in 0..<300 { path += "/d" }
            while path.count > root.count + 1 {
                rmdir(path)
                path = Files.directory(of: path)
            }
            cleanup()
        }
        var path = root + "/d"
        for _ in 0..<300 {
            mkdir(path, 0o755)
            path += "/d"
        }
        #expect(throws: FileError.self) { try Files.removeTree("d", in: root) }
    }
}
