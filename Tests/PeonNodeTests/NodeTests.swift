import PeonArchive
import PeonCore
import PeonDocker
import PeonJSON
import PeonPlatform
import PeonSystem
import PeonTLS
import PeonTestSupport
import Synchronization
import Testing

@testable import PeonNode
@testable import PeonNodeAgent

#if canImport(Glibc)
    import Glibc
#endif

/// One node's data folder for a test, and an agent serving it on loopback over mutual TLS, or on
/// a unix socket in the data folder (`unix: true`, as beside the scheduler in `compose.yaml`).
final class TestNode: @unchecked Sendable {
    let data: String
    let files: LocalServerFiles
    let keys: (authority: PEMPair, agent: PEMPair, scheduler: PEMPair)
    let listener: TCPListener
    final class Flag: Sendable { let on = Atomic<Bool>(true) }
    let running = Flag()
    var thread: ThreadHandle?

    var server: AgentServer!

    /// `fixedAddress`: every container's address (probes and RCON reach loopback stand-ins).
    init(connections: Int = 16, idleMilliseconds: Int32 = 15_000, unix: Bool = false, fixedAddress: String? = nil) throws {
        var template = Array("/tmp/peon-node-XXXXXX".utf8CString)
        data = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        try Files.makeDirectories(data + "/servers")
        files = LocalServerFiles(dataDir: data, hostDataDir: "/host" + data)
        self.fixedAddress = fixedAddress
        let authority = try Certificates.makeAuthority(commonName: "test CA")
        keys = (
            authority,
            try Certificates.issue(commonName: "peon-agent", dnsNames: ["peon-agent"], role: .server, by: authority),
            try Certificates.issue(commonName: "peon-scheduler", dnsNames: ["peon-scheduler"], role: .client, by: authority)
        )
        listener = try unix ? TCPListener(host: "unix:" + data + "/agent.sock", port: 0) : TCPListener(host: "127.0.0.1", port: 0)
        let server = AgentServer(
            listener: listener,
            context: { [context = try TLSContext(role: .server, identity: keys.agent, authority: authority.certificate)] in context },
            maximumConnections: connections, idleMilliseconds: idleMilliseconds,
            node: { [files] in
                let node = LocalNode(
                    files: files, gameHost: "127.0.0.1", engine: { () throws(DockerError) in throw .badResponse("no engine here") })
                node.fixedAddress = fixedAddress
                return node
            },
            log: { _ in })
        let running = running
        self.server = server
        thread = ThreadHandle { server.serve { running.on.load(ordering: .relaxed) } }
    }

    deinit {
        running.on.store(false, ordering: .relaxed)
        thread?.join()
        listener.close()
        try? Files.removeTree(data)
    }

    let fixedAddress: String?

    var local: LocalNode {
        let node = LocalNode(
            files: files, gameHost: "127.0.0.1", engine: { () throws(DockerError) in throw .badResponse("no engine here") })
        node.fixedAddress = fixedAddress
        return node
    }

    /// The scheduler's channel to this node's agent, with `identity` (default: the scheduler's keys).
    func remote(identity: PEMPair? = nil, authority: String? = nil) throws -> AgentChannel {
        AgentChannel(
            host: listener.unix ? "unix:" + data + "/agent.sock" : "127.0.0.1", port: listener.port,
            context: try TLSContext(
                role: .client, identity: identity ?? keys.scheduler, authority: authority ?? keys.authority.certificate,
                expectedPeerName: "peon-agent"))
    }
}

/// Binds `fd` to a free loopback port; answers the port.
func bindLoopback(_ fd: Int32) -> Int {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var size = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

@Suite struct NodeTests {
    let run = "n\(getpid())x\(UInt16.random(in: 0...UInt16.max))"

    @Test func theLocalNodeKeepsTheContract() throws {
        let node = try TestNode()
        #expect(NodeContract(node: node.local, data: node.data, run: run).check() == [])
    }

    @Test func theAgentKeepsTheContractOverMutualTLS() throws {
        let node = try TestNode()
        #expect(NodeContract(node: try node.remote(), data: node.data, run: run).check() == [])
    }

    @Test func theAgentKeepsTheContractOverItsUnixSocket() throws {
        let node = try TestNode(unix: true)
        #expect(NodeContract(node: try node.remote(), data: node.data, run: run).check() == [])
    }

    /// On a unix socket the socket file is owner-only, and the agent itself serves only root and
    /// its own user, as the kernel names the peer: another user that gets through a wider mode is
    /// closed on before any operation runs.
    @Test func theUnixSocketServesOnlyRootAndTheAgentsUser() throws {
        let node = try TestNode(unix: true)
        let socket = node.data + "/agent.sock"
        var st = stat()
        #expect(stat(socket, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let uid = try ServerUID(validating: "peontest.\(run)u")
        _ = try node.remote().prepare(uid, BindSources(volumes: ["data"], files: []), actions: [], reinstallActions: false)
        let python = try #require(Command.find("python3"))
        let setpriv = try #require(Command.find("setpriv"))
        let json = Array(NodeOperation.remove(uid).json.bytes)
        let frame = AgentWire.header(.query, json.count) + json
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sys.argv[1])
            except OSError as e:
                print("refused", e.errno); sys.exit(0)
            try:
                s.sendall(bytes.fromhex(sys.argv[2]))
                print("answered" if s.recv(5) else "closed")
            except ConnectionError:
                print("closed")
            """
        let hex = frame.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        let asStranger = [setpriv, "--reuid=4242", "--regid=4242", "--clear-groups", python, "-c", script, socket, hex]
        // The socket file's mode: the stranger cannot even connect.
        let denied = Command.run(asStranger[0], Array(asStranger.dropFirst()))
        #expect(denied.output.hasPrefix("refused"), "\(denied.output)")
        // Past a wider mode (a mistake on the host), the agent's own check closes the connection.
        chmod(node.data, 0o755)
        chmod(socket, 0o666)
        let closed = Command.run(asStranger[0], Array(asStranger.dropFirst()))
        #expect(closed.output.hasPrefix("closed"), "\(closed.output)")
        #expect(Files.kind(node.data + "/servers/peontest/\(run)u") == .directory)
        // Root, as the scheduler in Peon's container may be, is served.
        let served = Command.run(python, ["-c", script, socket, hex])
        #expect(served.output.hasPrefix("answered"), "\(served.output)")
    }

    /// A caller without a certificate of Peon's CA, or with the agent's own (server-role)
    /// certificate, gets no operation run: the folder it names is still there.
    @Test func refusesCallersWithoutPeonsClientCertificate() throws {
        let node = try TestNode()
        let uid = try ServerUID(validating: "peontest.\(run)a")
        _ = try node.remote().prepare(uid, BindSources(volumes: ["data"], files: []), actions: [], reinstallActions: false)
        let stranger = try Certificates.makeAuthority(commonName: "stranger")
        let strangers = try Certificates.issue(commonName: "peon-scheduler", dnsNames: ["peon-scheduler"], role: .client, by: stranger)
        let callers = [
            try node.remote(identity: strangers, authority: node.keys.authority.certificate),
            try node.remote(identity: node.keys.agent),
        ]
        for caller in callers {
            #expect(throws: PlatformError.self) { try caller.remove(uid) }
        }
        #expect(Files.kind(node.data + "/servers/peontest/\(run)a") == .directory)
        // An agent of another CA is not the scheduler's agent either.
        #expect(throws: PlatformError.self) {
            try node.remote(authority: stranger.certificate).listeners()
        }
    }

    /// With Peon's keys, inputs are still checked: an unknown operation, a server outside
    /// `servers/<game>/<name>`, a path with `..`, an oversized frame.
    @Test func refusesOperationsThatAreNotPeons() throws {
        let node = try TestNode()
        let context = try TLSContext(
            role: .client, identity: node.keys.scheduler, authority: node.keys.authority.certificate, expectedPeerName: "peon-agent")
        func ask(_ query: JSON) throws -> (AgentWire.Kind, JSON)? {
            let stream = try TLSStream.connect(host: "127.0.0.1", port: node.listener.port, context: context, timeoutMilliseconds: 2000)
            defer { stream.close() }
            try AgentWire.write(stream, .query, json: query)
            guard let (kind, payload) = try AgentWire.read(stream) else { return nil }
            return (kind, try JSON.parse(payload))
        }
        let rule: JSON = ["client": "a2s", "name": "x", "max_players": 8, "ignore": []]
        let queries: [JSON] = [
            ["op": "sh", "command": "id"], ["op": "remove", "uid": "../etc"], ["op": "remove", "uid": "peontest"],
            ["op": "tail", "uid": "peontest.a", "path": "../../peon.db", "limit": 10],
            ["op": "tail", "uid": "peontest.a", "path": "/etc/passwd", "limit": 10],
            ["op": "stats", "container": "$(reboot)"], ["op": "kill", "container": "peon-agent"], ["op": "kill"],
            ["op": "console", "container": .string(String(repeating: "a", count: 64)), "line": "a\nb"],
            ["op": "manifest", "uid": "peontest.a", "bytes": "!!!"],
            ["op": "restore-stage", "uid": "peontest.a", "backup": 1, "sha256": "x"],
            // Ranges reach iptables-restore: nothing but an address and a prefix gets through.
            ["op": "egress", "allow": ["10.0.0.0/8 -j ACCEPT"], "default_bridge": false],
            ["op": "egress", "allow": ["10.0.0.0/8\n-F INPUT"], "default_bridge": false],
            ["op": "egress", "allow": "10.0.0.0/8", "default_bridge": false], ["op": "egress", "allow": []],
            // Holds: exactly servers, ports and rules, nothing more.
            ["op": "hold", "holds": "all"], ["op": "hold", "holds": [["uid": "../x", "ports": [], "rule": rule]]],
            ["op": "hold", "holds": [["uid": "peontest.a", "ports": ["0/udp"], "rule": rule]]],
            ["op": "hold", "holds": [["uid": "peontest.a", "ports": ["27015/sctp"], "rule": rule]]],
            [
                "op": "hold",
                "holds": [
                    ["uid": "peontest.a", "ports": ["27015/udp"], "rule": ["name": "x", "max_players": 1, "ignore": ["-j ACCEPT"]]]
                ],
            ],
            [
                "op": "hold",
                "holds": .array(Array(repeating: ["uid": "peontest.a", "ports": [], "rule": rule], count: PortHold.maximumHolds + 1)),
            ],
            ["op": "release", "uid": "peontest"], ["op": "handoff", "uid": "peontest.a", "container": "peon-agent"],
        ]
        for query in queries {
            let answer = try ask(query)
            #expect(answer?.0 == .failure && answer?.1["error"] == "refused", "\(query.text): \(String(describing: answer))")
        }
        // A frame larger than the protocol allows ends the connection without an answer.
        let stream = try TLSStream.connect(host: "127.0.0.1", port: node.listener.port, context: context, timeoutMilliseconds: 2000)
        try stream.write([AgentWire.Kind.query.rawValue, 0x7f, 0xff, 0xff, 0xff])
        #expect((try? AgentWire.read(stream)) ?? nil == nil)
        stream.close()
    }

    /// The readiness probes ask as a client would, in-process and through the agent: a TCP
    /// connection accepted, a Luanti server's answer (and a goodbye to the peer it made, from the
    /// same address), nothing for a port where nobody answers.
    @Test func probesAskTheGameAsAClientWould() throws {
        let node = try TestNode(fixedAddress: "127.0.0.1")
        let container = String(repeating: "ab", count: 32)
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            close(tcp)
            close(udp)
        }
        let tcpPort = bindLoopback(tcp)
        listen(tcp, 8)
        let udpPort = bindLoopback(udp)
        // A Luanti stand-in: answers each probe with SET_PEER_ID 0x0042 and keeps what follows.
        final class Seen: @unchecked Sendable { let datagrams = Mutex<[([UInt8], UInt16)]>([]) }
        let seen = Seen()
        let server = ThreadHandle {
            var buffer = [UInt8](repeating: 0, count: 64)
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            for _ in 0..<40 where seen.datagrams.withLock({ $0.count }) < 4 {
                var from = sockaddr_in()
                var size = socklen_t(MemoryLayout<sockaddr_in>.size)
                let n = withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp, &buffer, buffer.count, 0, $0, &size) }
                }
                guard n > 0 else { continue }
                let datagram = Array(buffer[..<n])
                seen.datagrams.withLock { $0.append((datagram, UInt16(bigEndian: from.sin_port))) }
                if datagram == LuantiPacket.probe {
                    let reply: [UInt8] = LuantiPacket.protocolID + [0x00, 0x01, 0x00, 0x03, 0xFF, 0xDC, 0x00, 0x01, 0x00, 0x42]
                    _ = withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, reply, reply.count, 0, $0, size) }
                    }
                }
            }
        }
        for channel in [node.local as any NodeChannel, try node.remote()] {
            #expect(try channel.probe(.tcp, container: container, port: tcpPort))
            #expect(try channel.probe(.luanti, container: container, port: udpPort))
        }
        server.join()
        let datagrams = seen.datagrams.withLock { $0 }
        let probes = datagrams.filter { $0.0 == LuantiPacket.probe }
        let goodbyes = datagrams.filter { $0.0 == LuantiPacket.disconnect(peer: 0x42) }
        #expect(probes.count == 2 && goodbyes.count == 2)
        #expect(Set(probes.map(\.1)) == Set(goodbyes.map(\.1)), "the goodbye comes from the probe's own address")
        // A closed port: no connection, no answer.
        let closed = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let closedPort = bindLoopback(closed)
        close(closed)
        #expect(try !(node.local as any NodeChannel).probe(.tcp, container: container, port: closedPort))
        // No container address (not running): not ready, asked nothing.
        #expect(try !(try TestNode().local as any NodeChannel).probe(.tcp, container: container, port: tcpPort))
        let op = NodeOperation.probe(.luanti, container: container, port: 30000)
        #expect(try NodeOperation(json: op.json) == op)
        #expect(throws: PlatformError.self) {
            try NodeOperation(json: ["op": "probe", "kind": "http", "container": .string(container), "port": 80])
        }
    }

    /// A sleeping server's ports, held by its node, in-process and through the agent: A2S is
    /// answered for the game, a stray datagram and a connect scan wake nothing, a second datagram
    /// or a connection that speaks does; a release frees the port, and the connection held
    /// meanwhile reaches the game, with what it sent first.
    @Test func heldPortsWakeOnAClientAndHandTheConnectionOver() throws {
        let node = try TestNode(fixedAddress: "127.0.0.1")
        let container = String(repeating: "cd", count: 32)
        func freePort(_ type: __socket_type) -> Int {
            let fd = socket(AF_INET, Int32(type.rawValue), 0)
            defer { close(fd) }
            return bindLoopback(fd)
        }
        func address(_ port: Int) -> sockaddr_in {
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            return addr
        }
        for (n, channel) in [node.local as any NodeChannel, try node.remote()].enumerated() {
            let uid = try ServerUID(validating: "sleepy.\(run)\(n)")
            let (tcp, udp) = (freePort(SOCK_STREAM), freePort(SOCK_DGRAM))
            let hold = PortHold(
                uid: uid, ports: [PortKey(tcp, .tcp), PortKey(udp, .udp)],
                rule: WakeRule(client: .a2s, ignore: [], name: "Sleepy", maxPlayers: 8))
            #expect(try NodeOperation(json: NodeOperation.hold([hold]).json) == .hold([hold]))
            #expect(try channel.hold([hold]) == PortHoldState())
            // A2S, with its challenge.
            let client = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var to = address(udp)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            func exchange(_ bytes: [UInt8]) -> [UInt8] {
                _ = withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(client, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                var buffer = [UInt8](repeating: 0, count: 1500)
                let got = recv(client, &buffer, buffer.count, 0)
                return got > 0 ? Array(buffer[..<got]) : []
            }
            let challenge = try #require(PlayerQuery.a2sChallenge(exchange(PlayerQuery.a2sRequest())))
            #expect(PlayerQuery.a2sInfo(exchange(PlayerQuery.a2sRequest(challenge: challenge))).map { [$0.players, $0.max] } == [0, 8])
            // A stray datagram, a connect scan: nothing wakes.
            _ = withUnsafePointer(to: &to) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(client, [1], 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if let scan = try? TCPConnect.open(host: "127.0.0.1", port: tcp, timeoutMilliseconds: 1000) { close(scan) }
            Monotonic.sleep(0.4)
            #expect(try channel.holdState().woken.isEmpty)
            // A connection that speaks wakes it, and is reported until the ports are let go.
            let player = try TCPConnect.open(host: "127.0.0.1", port: tcp, timeoutMilliseconds: 1000)
            defer { close(player) }
            _ = send(player, "hello", 5, 0)
            // The scheduler's long poll answers with the wake (the operation allows 5 s of waiting).
            let woken = try channel.holdState(waitMilliseconds: PortHold.longestWait).woken
            #expect(woken.map(\.uid) == [uid] && woken.first?.port == PortKey(tcp, .tcp) && woken.first?.from == "127.0.0.1")
            // Released: the port is free for the game; the game (an echo here) gets the held connection.
            #expect(try channel.release(uid) == [PortKey(tcp, .tcp), PortKey(udp, .udp)])
            let game = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(game) }
            var one: Int32 = 1
            setsockopt(game, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var at = address(tcp)
            let bound = withUnsafePointer(to: &at) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(game, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(bound == 0 && listen(game, 4) == 0, "errno \(errno)")
            #expect(try channel.holdState() == PortHoldState())
            try channel.handoff(uid, container: container)
            let accepted = accept(game, nil, nil)
            defer { close(accepted) }
            var buffer = [UInt8](repeating: 0, count: 16)
            #expect(recv(accepted, &buffer, 5, Int32(MSG_WAITALL)) == 5 && Array(buffer[..<5]) == Array("hello".utf8))
            _ = send(accepted, "world", 5, 0)
            var answer = pollfd(fd: player, events: Int16(POLLIN), revents: 0)
            #expect(poll(&answer, 1, 2000) == 1 && recv(player, &buffer, 16, 0) == 5 && Array(buffer[..<5]) == Array("world".utf8))
            close(client)
            #expect(try channel.hold([]) == PortHoldState())
        }
    }

    /// The egress operations cross the wire unchanged and reach the node's firewall as one
    /// restore per family (recorded here: a unit test never touches the host's firewall).
    @Test func egressRulesReachTheFirewall() throws {
        let op = NodeOperation.egress(allow: [CIDR("169.254.169.254")!, CIDR("fd00::/8")!], defaultBridge: false)
        #expect(try NodeOperation(json: JSON.parse(Array(op.json.text.utf8))) == op)
        #expect(try NodeOperation(json: NodeOperation.egressRemove.json) == .egressRemove)
        final class Calls: @unchecked Sendable {
            let list = Mutex<[(String, [String], String)]>([])
        }
        let calls = Calls()
        let node = try TestNode().local
        node.firewall = EgressFirewall(
            run: { tool, arguments, input in
                calls.list.withLock { $0.append((tool, arguments, String(decoding: input, as: UTF8.self))) }
                return Command.Result(status: 0, output: tool.hasSuffix("restore") ? "" : "-P INPUT ACCEPT\n-N DOCKER-USER\n")
            }, hasIPv6: { true })
        #expect(try node.egress(allow: [CIDR("169.254.169.254")!], defaultBridge: false) == ["ipv4", "ipv6"])
        let recorded = calls.list.withLock { $0 }
        #expect(recorded.map(\.0) == ["iptables", "iptables-restore", "ip6tables", "ip6tables-restore"])
        #expect(recorded[1].1 == ["--noflush", "-w"] && recorded[1].2.contains("-I DOCKER-USER 1 -i peon+ -j PEON-EGRESS"))
        #expect(recorded[1].2.contains("-d 169.254.169.254/32 -j RETURN") && !recorded[3].2.contains("169.254"))
        // Nothing of Peon's in the listing: removal changes nothing.
        try node.removeEgress()
        #expect(calls.list.withLock { $0.count } == 6)
    }

    /// Connections beyond the cap are closed at once, before any TLS work; the agent serves again
    /// once they are gone.
    @Test func capsConnections() throws {
        let node = try TestNode(connections: 4)
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<12 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(node.listener.port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, 16) } }
            idle.append(fd)
        }
        usleep(500_000)
        // The ones over the cap were closed by the agent: a read ends at once.
        var closed = 0
        for fd in idle {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            var byte: UInt8 = 0
            if poll(&pfd, 1, 0) == 1, recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 { closed += 1 }
        }
        #expect(closed >= 8, "\(closed) of 12 idle connections closed")
        for fd in idle { close(fd) }
        idle = []
        // The idle ones that got a slot time out of their handshake (5 s); then operations run again.
        var served = false
        for _ in 0..<100 where !served {
            served = (try? node.remote().listeners()) != nil
            if !served { usleep(100_000) }
        }
        #expect(served)
    }

    /// Operations one after another reuse one connection (one handshake); a connection the agent
    /// closed while it sat idle is noticed and replaced, and the operation still runs.
    @Test func operationsReuseAConnectionAndReplaceOneTheAgentClosed() throws {
        let node = try TestNode(idleMilliseconds: 300)
        let remote = try node.remote()
        for _ in 0..<10 { _ = try remote.listeners() }
        #expect(node.server.acceptedConnections == 1)
        usleep(600_000)  // the agent ends the idle connection
        _ = try remote.listeners()
        #expect(node.server.acceptedConnections == 2)
        // A failure answer leaves the connection usable too.
        #expect(throws: PlatformError.self) { try remote.restoreSwap(try ServerUID(validating: "peontest.none"), backup: 1) }
        _ = try remote.listeners()
        #expect(node.server.acceptedConnections == 2)
    }

    /// A backup streamed out of the node and a restore streamed back in, through the agent: the
    /// same bytes as in-process, a changed archive refused with nothing changed, and a swap that
    /// puts the backup's folders in place.
    @Test func backupAndRestoreStreamThroughTheAgent() throws {
        let node = try TestNode()
        let remote = try node.remote()
        let uid = try ServerUID(validating: "peontest.\(run)b")
        let dir = node.data + "/servers/peontest/\(run)b"
        _ = try remote.prepare(uid, BindSources(volumes: ["config", "user", "data"], files: []), actions: [], reinstallActions: false)
        try Files.write(dir + "/user/world.txt", Array(repeating: 65, count: 3 << 20))
        try Files.write(dir + "/config/server_name", Array("before".utf8))
        let archive = node.data + "/backup.tar.zst"
        let out = open(archive, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try remote.archive(uid, format: "tar.zst", to: out)
        close(out)
        try ArchiveExtractor.verify(file: archive)
        let checksum = Checksum()
        let bytes = try Files.read(archive, limit: 64 << 20)
        bytes.withUnsafeBytes { checksum.update($0) }
        let (digest, _) = checksum.finalize()
        // The world changes after the backup.
        try Files.write(dir + "/config/server_name", Array("after".utf8))
        try Files.write(dir + "/user/world.txt", Array("gone".utf8))
        // A wrong checksum: refused, nothing staged, nothing changed.
        var input = open(archive, O_RDONLY)
        #expect(throws: PlatformError.self) {
            try remote.restoreStage(uid, backup: 7, sha256: String(repeating: "0", count: 64), from: input)
        }
        close(input)
        #expect(Files.list(dir).filter { $0.hasPrefix(".restore-") }.isEmpty)
        #expect(try Files.read(dir + "/config/server_name", limit: 100) == Array("after".utf8))
        // The right one: staged, then swapped in.
        input = open(archive, O_RDONLY)
        try remote.restoreStage(uid, backup: 7, sha256: digest, from: input)
        close(input)
        try remote.restoreSwap(uid, backup: 7)
        #expect(try Files.read(dir + "/config/server_name", limit: 100) == Array("before".utf8))
        #expect(try Files.read(dir + "/user/world.txt", limit: 4 << 20).count == 3 << 20)
        // A hostile archive (a link entry) is refused whole.
        try remote.remove(uid)
    }
}
