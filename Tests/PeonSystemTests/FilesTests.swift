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

@Suite struct HostPortsTests {
    @Test func parsesProcNetTables() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
               1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
            """
        #expect(HostPorts.parse(tcp, state: "0A") == [8443])
        #expect(HostPorts.parse(tcp, state: nil) == [8443, 8080])
    }

    @Test func readsThisHost() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 1)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        #expect(HostPorts.listening().tcp.contains(port))
        // A connection's own (ephemeral) port is in use too: the engine could not publish it.
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
        var local = sockaddr_in()
        var localLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &localLength) }
        }
        #expect(HostPorts.listening().tcp.contains(Int(UInt16(bigEndian: local.sin_port))))
    }
}
