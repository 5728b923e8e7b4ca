import CLinux
import Logging
import PeonDocker
import PeonNode
import PeonNodeAgent
import PeonPlatform
import PeonSystem
import PeonTLS
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Peon's node agent: runs the scheduler's `NodeOperation`s on this node, over mutual TLS.
///
/// Started as root only to read its keys (Swarm secrets, root-only), make the node's servers
/// folder for the games' user and learn the engine socket's group; it then becomes the games' user
/// (uid 1000, which owns every server file) with that one extra group, before it accepts a single
/// connection. Of its capabilities only CAP_NET_ADMIN stays, ambient and not effective, for the
/// iptables it runs to install the games' egress rules (`NodeOperation.egress`).
///
/// Environment: `PEON_AGENT_DATA` (the node's data folder here, /peon), `PEON_AGENT_HOST_DATA` (the
/// same folder as the node's engine sees it), `PEON_AGENT_PORT` (7380), `PEON_AGENT_LISTEN` (the
/// address to listen on: an IP, or `unix:<path>` beside a scheduler on the same host) or
/// `PEON_AGENT_NODES` + `PEON_NODE_ID` (Swarm: `id=address` pairs and this node's id),
/// `PEON_AGENT_TLS` (the folder of `peon-agent-ca.pem`, `-cert.pem`, `-key.pem`; waited for up to a
/// minute, since a scheduler beside it writes them at its start), `PEON_DOCKER_SOCKET` (the node's
/// engine), `PEON_GAME_BIND` (where game ports are published, 0.0.0.0 by default: A2S queries go
/// there, to loopback for 0.0.0.0, and sleeping servers' ports are held there),
/// `PEON_AGENT_CONNECTIONS` (16).
@main
enum PeonAgentMain {
    static func main() {
        let env = ProcessEnvironment.read([
            "PEON_AGENT_DATA", "PEON_AGENT_HOST_DATA", "PEON_AGENT_PORT", "PEON_AGENT_LISTEN", "PEON_AGENT_NODES", "PEON_NODE_ID",
            "PEON_AGENT_TLS", "PEON_DOCKER_SOCKET", "PEON_AGENT_CONNECTIONS", "PEON_LOG_LEVEL", "PEON_GAME_BIND",
        ])
        let logger = ProcessLogging.start(label: "peon.agent", level: env["PEON_LOG_LEVEL"] ?? "info")
        func fail(_ message: String, _ code: Int32 = 1) -> Never {
            logger.critical("\(message)")
            exit(code)
        }
        let data = env["PEON_AGENT_DATA"] ?? "/peon"
        let hostData = env["PEON_AGENT_HOST_DATA"] ?? data
        let socket = env["PEON_DOCKER_SOCKET"] ?? "/var/run/docker.sock"
        guard let port = Int(env["PEON_AGENT_PORT"] ?? "7380"), (1...65535).contains(port) else { fail("PEON_AGENT_PORT is not a port", 2) }
        let connections = Int(env["PEON_AGENT_CONNECTIONS"] ?? "16").map { min(max($0, 1), 256) } ?? 16
        var address = env["PEON_AGENT_LISTEN"]
        if address == nil, let id = env["PEON_NODE_ID"] {
            address = (env["PEON_AGENT_NODES"] ?? "").split(separator: " ").first { $0.hasPrefix(id + "=") }.map {
                String($0.dropFirst(id.count + 1))
            }
        }
        // A node not in the list yet waits for the update that adds it (Swarm starts the task again).
        guard let address else { fail("no address for this node yet (PEON_AGENT_LISTEN, or PEON_NODE_ID in PEON_AGENT_NODES)") }

        // As root: the keys, the servers folder, the socket's group.
        let tls = env["PEON_AGENT_TLS"] ?? "/run/secrets"
        func text(_ name: String) -> String {
            for _ in 0..<300 {
                if let bytes = try? Files.read(tls + "/" + name, limit: 64 << 10) { return String(decoding: bytes, as: UTF8.self) }
                Monotonic.sleep(0.2)
            }
            fail("cannot read \(tls)/\(name)")
        }
        let keys: Mutex<TLSContext>
        do {
            keys = Mutex(try context(text))
        } catch {
            fail("unusable keys: \(error)")
        }
        let games: (uid: UInt32, gid: UInt32) = (1000, 1000)
        if geteuid() == 0 {
            do {
                close(try Files.openDirectory("servers", in: data, create: true, mode: 0o755, owner: games))
                // A unix socket's folder, for the games' user the agent becomes.
                if address.hasPrefix("unix:/") {
                    let folder = Files.directory(of: String(address.dropFirst(5)))
                    try Files.makeDirectories(folder, mode: 0o755)
                    _ = chown(folder, games.uid, games.gid)
                }
            } catch {
                fail("cannot make \(data)/servers: \(error)")
            }
            var st = stat()
            var groups = [gid_t(games.gid)]
            if stat(socket, &st) == 0 { groups.append(st.st_gid) }
            // CAP_NET_ADMIN outlives the setuid, ambient only: the iptables this agent runs for the
            // games' egress rules (a node's reboot, a new allow list) get it, the agent's own code
            // does not hold it (its effective set is empty), every other capability is gone.
            _ = peon_keep_capabilities()
            guard setgroups(groups.count, &groups) == 0, setgid(games.gid) == 0, setuid(games.uid) == 0 else {
                fail("cannot become the games' user: \(String(cString: strerror(errno)))")
            }
            let netAdmin = peon_limit_capabilities(peon_cap_net_admin()) == 0
            guard setuid(0) != 0 else { fail("root could be regained after becoming the games' user") }
            if !netAdmin {
                logger.warning("no CAP_NET_ADMIN to keep: this node's egress rules cannot be installed (compose.yaml: cap_add NET_ADMIN)")
            }
        }
        Signals.installWorkerHandlers()

        // During an update Swarm may start this task before the node's previous one let go of the
        // port: try again for 20 s instead of failing into Swarm's restart back-off.
        var listener: TCPListener?
        for _ in 0..<100 {
            listener = try? TCPListener(host: address, port: port)
            if listener != nil || Signals.shutdownRequested.load(ordering: .relaxed) { break }
            Monotonic.sleep(0.2)
        }
        guard let listener else { fail("cannot listen on \(address):\(port)") }
        logger.info("listening", metadata: ["address": "\(address):\(port)", "data": "\(data)", "uid": "\(geteuid())"])

        let files = LocalServerFiles(dataDir: data, hostDataDir: hostData)
        // Where games publish their ports (every address by default, as the scheduler and Swarm
        // publish them): queries go to its loopback, a sleeping server's ports are held there.
        let gameHost = env["PEON_GAME_BIND"] ?? "0.0.0.0"
        // Keys rotated beside a scheduler on this host (its files are this user's): taken within 5 s.
        // (On Swarm, rotated keys come with a new task: the secrets are root's and unreadable now.)
        let reload = ThreadHandle {
            var seen = stamp(tls)
            while !Signals.shutdownRequested.load(ordering: .relaxed) {
                Monotonic.sleep(1)
                let now = stamp(tls)
                guard now != seen else { continue }
                seen = now
                if let fresh = try? context({ name in
                    (try? Files.read(tls + "/" + name, limit: 64 << 10)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                }) {
                    keys.withLock { $0 = fresh }
                    logger.notice("keys reloaded")
                }
            }
        }
        defer { reload.join() }
        let server = AgentServer(
            listener: listener, context: { keys.withLock { $0 } }, maximumConnections: connections,
            node: {
                LocalNode(files: files, gameHost: gameHost, engine: { () throws(DockerError) in try DockerClient(socketPath: socket) })
            },
            log: { logger.notice("\($0)") })
        server.serve { !Signals.shutdownRequested.load(ordering: .relaxed) }
        logger.info("stopped")
    }

    /// The agent's side of the mutual TLS from its key files (`text` reads one).
    static func context(_ text: (String) -> String) throws(TLSError) -> TLSContext {
        try TLSContext(
            role: .server, identity: PEMPair(certificate: text("peon-agent-cert.pem"), key: text("peon-agent-key.pem")),
            authority: text("peon-agent-ca.pem"))
    }

    /// When the key files last changed (their modification times).
    static func stamp(_ folder: String) -> [Int] {
        ["peon-agent-ca.pem", "peon-agent-cert.pem", "peon-agent-key.pem"].map { name in
            var st = stat()
            return stat(folder + "/" + name, &st) == 0 ? Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec) : 0
        }
    }
}
