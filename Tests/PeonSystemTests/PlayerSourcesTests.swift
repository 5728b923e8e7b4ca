import Testing

@testable import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What the player poll reads: a game's log (hostile files) and a UDP answer (a stand-in server).
@Suite struct PlayerSourcesTests {
    let root: String = {
        var template = Array("/tmp/peon-players-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    @Test func tailReadsTheEndAndRefusesLinksAndFIFOs() throws {
        defer { try? Files.removeTree(root) }
        try Files.makeDirectories(root + "/g/s/config")
        try Files.write(root + "/g/s/config/debug.txt", Array(repeating: 0x61, count: 100) + Array("END".utf8))
        #expect(Files.tail("g/s/config/debug.txt", in: root, limit: 5) == "aaEND")
        #expect(Files.tail("g/s/config/missing.txt", in: root, limit: 5) == nil)
        #expect(mkfifo(root + "/g/s/config/fifo.txt", 0o644) == 0)
        #expect(Files.tail("g/s/config/fifo.txt", in: root, limit: 5) == nil, "a FIFO must not block the poll")
        symlink("/etc/hostname", root + "/g/s/config/link.txt")
        #expect(Files.tail("g/s/config/link.txt", in: root, limit: 5) == nil)
        // A folder swapped for a link to elsewhere: refused at that level.
        try Files.makeDirectories(root + "/elsewhere")
        try Files.write(root + "/elsewhere/debug.txt", Array("secret".utf8))
        symlink(root + "/elsewhere", root + "/g/s/user")
        #expect(Files.tail("g/s/user/debug.txt", in: root, limit: 50) == nil)
        #expect(Files.tail("g/s/../../elsewhere/debug.txt", in: root, limit: 50) == nil)
    }

    @Test func udpExchangeWithAStandInAndATimeout() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        // The stand-in answers one datagram with its reversal.
        let server = ThreadHandle {
            var buffer = [UInt8](repeating: 0, count: 64)
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &peerLength) }
            }
            guard n > 0 else { return }
            let reply = Array(buffer[..<n].reversed())
            _ = withUnsafePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, peerLength) }
            }
        }
        #expect(UDPQuery.exchange(host: "127.0.0.1", port: port, payload: [1, 2, 3], timeoutMilliseconds: 2000) == [3, 2, 1])
        server.join()
        // Nobody answers: nil within the bound.
        let started = Monotonic.seconds()
        #expect(UDPQuery.exchange(host: "127.0.0.1", port: port, payload: [1], timeoutMilliseconds: 200) == nil)
        #expect(Monotonic.seconds() - started < 1)
        #expect(UDPQuery.exchange(host: "not-an-ip", port: port, payload: [1], timeoutMilliseconds: 200) == nil)
    }

    @Test func zoneFilesStayInsideTheDatabase() throws {
        defer { try? Files.removeTree(root) }
        #expect(ZoneInfo.read("Europe/Berlin")?.starts(with: Array("TZif".utf8)) == true)
        for name in ["../../etc/passwd", "/etc/passwd", "Europe/../../../etc/passwd", "./UTC", "Nowhere/Land", "Europe"] {
            #expect(ZoneInfo.read(name) == nil, "\(name)")
        }
        // A link inside a database that points out of it is refused; one that stays inside is followed.
        try Files.makeDirectories(root + "/db/Etc")
        try Files.write(root + "/db/Etc/UTC", Array("TZif2".utf8))
        symlink("/etc/passwd", root + "/db/Evil")
        symlink("Etc/UTC", root + "/db/UTC")
        #expect(ZoneInfo.read("Evil", root: root + "/db") == nil)
        #expect(ZoneInfo.read("UTC", root: root + "/db") == Array("TZif2".utf8))
    }
}
