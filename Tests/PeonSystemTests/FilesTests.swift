import PeonSystem
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FilesTests {
    let root: String = {
        var template = Array("/tmp/peon-files-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    @Test func readIsBoundedAndRefusesLinks() throws {
        defer { try? Files.removeTree(root) }
        try Files.write(root + "/small", Array("hello".utf8))
        #expect(try Files.read(root + "/small", limit: 5) == Array("hello".utf8))
        #expect(throws: FileError.self) { try Files.read(root + "/small", limit: 4) }
        symlink(root + "/small", root + "/link")
        #expect(throws: FileError.self) { try Files.read(root + "/link", limit: 100) }
        #expect(throws: FileError.self) { try Files.read(root, limit: 100) }
        #expect(throws: FileError.self) { try Files.read(root + "/missing", limit: 100) }
    }

    @Test func removeTreeNeverFollowsLinks() throws {
        defer { try? Files.removeTree(root) }
        try Files.makeDirectories(root + "/outside/keep")
        try Files.write(root + "/outside/keep/file", [1])
        try Files.makeDirectories(root + "/victim/sub")
        symlink(root + "/outside", root + "/victim/sub/escape")
        try Files.removeTree(root + "/victim")
        #expect(Files.kind(root + "/victim") == .missing)
        #expect(Files.kind(root + "/outside/keep/file") == .file)
    }

    @Test func copyTreeSkipsLinks() throws {
        defer { try? Files.removeTree(root) }
        try Files.makeDirectories(root + "/src/a")
        try Files.write(root + "/src/a/plan.json", Array("{}".utf8))
        symlink("/etc/passwd", root + "/src/a/passwd")
        try Files.copyTree(from: root + "/src", to: root + "/dst")
        #expect(Files.list(root + "/dst/a") == ["plan.json"])
    }

    @Test func directoryOf() {
        #expect(Files.directory(of: "/a/b/c.sock") == "/a/b")
        #expect(Files.directory(of: "/c.sock") == "/")
        #expect(Files.directory(of: "c.sock") == ".")
    }
}
