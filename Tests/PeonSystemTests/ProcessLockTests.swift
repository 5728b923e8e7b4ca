import PeonSystem
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ProcessLockTests {
    let root: String = {
        var template = Array("/tmp/peon-lock-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    @Test func aHeldLockIsSeenAndRefusedUntilReleased() throws {
        defer { try? Files.removeTree(root) }
        let path = root + "/scheduler.lock"
        #expect(!ProcessLock.isHeld(path), "no file: nobody holds it")
        let fd = try #require(try ProcessLock.tryHold(path))
        #expect(ProcessLock.isHeld(path))
        #expect(try ProcessLock.tryHold(path) == nil, "a second holder waits")
        close(fd)
        #expect(!ProcessLock.isHeld(path))
        let again = try #require(try ProcessLock.tryHold(path))
        close(again)
    }

    @Test func aDirectoryTheUserCannotSearchBlocksIt() throws {
        defer { try? Files.removeTree(root) }
        let nobody = try #require(Account(named: "nobody"))
        try Files.makeDirectories(root + "/open/data")
        try Files.setMode(root, 0o755)
        try Files.setMode(root + "/open", 0o755)
        #expect(Privileges.blockedDirectory(root + "/open/data", for: nobody) == nil)
        try Files.setMode(root + "/open", 0o700)
        #expect(Privileges.blockedDirectory(root + "/open/data", for: nobody) == root + "/open")
        #expect(Account(named: "no-such-user-\(getpid())") == nil)
    }
}
