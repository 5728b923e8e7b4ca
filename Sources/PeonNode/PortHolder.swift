public import PeonCore
public import PeonPlatform
import PeonSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A node's sleeping servers' published ports (`wake_on_connect`), held by this process: one
/// thread polls them all, answers for the game what a `WakeRule` answers (A2S_INFO), and marks a
/// server woken when a client shows up. A woken server's ports are let go right before its start
/// (`release`); the TCP connections held meanwhile wait for the game to be ready (`handoff`), then
/// are relayed to it. Everything here comes from the network: sizes and counts are bounded.
///
/// Datagrams are not replayed: the game must answer a client from its own published port, which
/// the engine holds from the start on, so a UDP client's own retries get in (Luanti resends its
/// hello every half second, Steam clients every second).
public final class PortHolder: Sendable {
    /// The node's one holder: a hold outlives the node object that set it (the scheduler makes a
    /// node per thread; the agent one per connection).
    public static let shared = PortHolder()

    /// How long held connections wait for their game before they are closed.
    static let handoffSeconds = 900.0

    struct Connection {
        let fd: Int32
        let port: Int
        let from: IPAddress?
        let openedAt: Double
        var bytes: [UInt8] = []
    }

    struct Held {
        var hold: PortHold
        var sockets: [(key: PortKey, fd: Int32)] = []
        var failed: [String] = []
        /// When each address last sent a datagram (a second one within `confirmSeconds` wakes).
        var lastSeen: [IPAddress: Double] = [:]
        var connections: [Connection] = []
        var woken: PortHoldState.Wake?
    }

    struct State {
        var holds: [ServerUID: Held] = [:]
        /// Woken servers whose ports were let go: the connections waiting for `handoff`, the ports
        /// that were held (the start publishes them again: they are the server's own), and until when.
        var waiting: [ServerUID: (connections: [Connection], ports: [PortKey], until: Double)] = [:]
        var polling = false
    }

    private let state = Mutex(State())
    /// Interrupts the poll thread (its read end is in every poll), and counts its rounds: a socket
    /// closed while a poll holds it stays bound until that poll returns.
    private let interrupt: (read: Int32, write: Int32)
    /// Readable once a client woke a server: what a waiting `current` sleeps on.
    private let woke: (read: Int32, write: Int32)
    private let rounds = Atomic<Int>(0)
    /// Mixed into each address's A2S challenge: random per process.
    private static let secret = UInt64.random(in: 0...UInt64.max)

    init() {
        func pipeEnds() -> (Int32, Int32) {
            var ends: [Int32] = [-1, -1]
            pipe(&ends)
            for fd in ends {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            return (ends[0], ends[1])
        }
        interrupt = pipeEnds()
        woke = pipeEnds()
    }

    /// Returns once the poll thread no longer holds sockets closed before this call.
    private func settle() {
        let before = rounds.load(ordering: .acquiring)
        var byte: UInt8 = 1
        _ = Glibc.write(interrupt.write, &byte, 1)
        for _ in 0..<500 where state.withLock({ $0.polling }) && rounds.load(ordering: .acquiring) <= before + 1 {
            usleep(1000)
        }
    }

    /// Holds exactly `holds` on `bind` (an IPv4 address; 0.0.0.0 for every address).
    public func apply(_ holds: [PortHold], bind: String) -> PortHoldState {
        let (start, closed) = state.withLock { state -> (Bool, Bool) in
            let wanted = Dictionary(holds.map { ($0.uid, $0) }) { a, _ in a }
            var closed = false
            for (uid, held) in state.holds where wanted[uid] == nil || wanted[uid]?.ports != held.hold.ports {
                // A woken server's hold ends this way too when the list comes before its start.
                Self.drop(uid, from: &state)
                closed = true
            }
            for hold in holds {
                if var held = state.holds[hold.uid], held.hold.ports == hold.ports {
                    held.hold = hold
                    // Ports another program had are tried again at every call.
                    if !held.failed.isEmpty { Self.open(&held, bind: bind) }
                    state.holds[hold.uid] = held
                    continue
                }
                var held = Held(hold: hold)
                Self.open(&held, bind: bind)
                state.holds[hold.uid] = held
            }
            return (Self.startPolling(&state), closed)
        }
        if start { ThreadHandle.detach { self.pollLoop() } }
        // Ports let go are free when this answers (a start may bind them next).
        if closed { settle() }
        return current()
    }

    /// What is held and who woke what (a woken server is reported until its ports are released);
    /// with `waitMilliseconds`, answers once something woke or the time is up.
    public func current(waitMilliseconds: Int = 0) -> PortHoldState {
        let deadline = Monotonic.seconds() + Double(waitMilliseconds) / 1000
        var answer = snapshot()
        while answer.woken.isEmpty, Monotonic.seconds() < deadline {
            var p = pollfd(fd: woke.read, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(max(1, (deadline - Monotonic.seconds()) * 1000)))
            var drain = [UInt8](repeating: 0, count: 64)
            while Glibc.read(woke.read, &drain, drain.count) > 0 {}
            answer = snapshot()
        }
        return answer
    }

    private func snapshot() -> PortHoldState {
        state.withLock { state in
            var answer = PortHoldState()
            for (uid, held) in state.holds {
                if !held.failed.isEmpty { answer.failed[uid] = held.failed }
                if let wake = held.woken { answer.woken.append(wake) }
            }
            return answer
        }
    }

    /// Lets the server's ports go; its held connections wait for `handoff`. Answers the ports it
    /// held: its own, even while a connection held there still has the port as its local one.
    public func release(_ uid: ServerUID) -> [PortKey] {
        let (dropped, ports) = state.withLock { state in
            let dropped = Self.drop(uid, from: &state)
            return (dropped, state.waiting[uid]?.ports ?? [])
        }
        // The engine binds these ports next.
        if dropped { settle() }
        return ports
    }

    /// Closes a hold's ports; a woken server's connections and ports wait for its start and
    /// `handoff`, others close.
    @discardableResult
    static func drop(_ uid: ServerUID, from state: inout State) -> Bool {
        expire(&state, now: Monotonic.seconds())
        guard let held = state.holds.removeValue(forKey: uid) else { return false }
        for s in held.sockets { Glibc.close(s.fd) }
        if held.woken != nil {
            state.waiting[uid] = (held.connections, held.sockets.map(\.key), Monotonic.seconds() + handoffSeconds)
        } else {
            for c in held.connections { Glibc.close(c.fd) }
        }
        return true
    }

    /// Relays the server's held connections to the game at `host` (each to its own port number).
    public func handoff(_ uid: ServerUID, host: String) {
        let connections = state.withLock { state in state.waiting.removeValue(forKey: uid)?.connections ?? [] }
        for connection in connections {
            ThreadHandle.detach { Self.relay(connection, host: host) }
        }
    }

    // MARK: - Sockets

    static func open(_ held: inout Held, bind: String) {
        let have = Set(held.sockets.map(\.key))
        held.failed = []
        for key in held.hold.ports where !have.contains(key) {
            switch Self.socket(key, bind: bind) {
            case .success(let fd): held.sockets.append((key, fd))
            case .failure(let why): held.failed.append("\(key): \(why.description)")
            }
        }
    }

    struct Refusal: Error, CustomStringConvertible { let description: String }

    /// A bound UDP socket or a listening TCP socket on `bind`:`key`, non-blocking.
    static func socket(_ key: PortKey, bind: String) -> Result<Int32, Refusal> {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: key.port).bigEndian)
        guard inet_pton(AF_INET, bind, &addr.sin_addr) == 1 else { return .failure(Refusal(description: "\(bind) is not IPv4")) }
        let type = key.transport == .tcp ? SOCK_STREAM : SOCK_DGRAM
        let fd = Glibc.socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(Refusal(description: "no socket")) }
        if key.transport == .tcp {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, key.transport == .udp || listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            return .failure(Refusal(description: why))
        }
        return .success(fd)
    }

    static func address(_ addr: sockaddr_in) -> IPAddress? {
        var a = addr.sin_addr
        return IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) })
    }

    // MARK: - The poll thread

    /// Whether a poll thread must be started (none runs and there is something to watch).
    static func startPolling(_ state: inout State) -> Bool {
        guard !state.polling, watching(state) else { return false }
        state.polling = true
        return true
    }

    /// Held ports to poll, or held connections to close when their wait ends: a woken server's
    /// ports alone (kept for `release`) need no thread.
    static func watching(_ state: State) -> Bool {
        !state.holds.isEmpty || state.waiting.values.contains { !$0.connections.isEmpty }
    }

    /// Ends the waits that are over: their connections close.
    static func expire(_ state: inout State, now: Double) {
        for (uid, wait) in state.waiting where wait.until < now {
            for c in wait.connections { Glibc.close(c.fd) }
            state.waiting[uid] = nil
        }
    }

    private func pollLoop() {
        var fds: [pollfd] = []
        while true {
            // The set is rebuilt every round: holds change under other threads' calls.
            let watched: [(ServerUID, Int32, PortKey?)]? = state.withLock { state in
                Self.expire(&state, now: Monotonic.seconds())
                guard Self.watching(state) else {
                    state.polling = false
                    return nil
                }
                var list: [(ServerUID, Int32, PortKey?)] = []
                for (uid, held) in state.holds {
                    for s in held.sockets { list.append((uid, s.fd, s.key)) }
                    for c in held.connections where c.bytes.count < WakeRule.heldBytes { list.append((uid, c.fd, nil)) }
                }
                return list
            }
            guard let watched else { return }
            fds = watched.map { pollfd(fd: $0.1, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: interrupt.read, events: Int16(POLLIN), revents: 0))
            _ = poll(&fds, nfds_t(fds.count), 100)
            rounds.add(1, ordering: .releasing)
            var drain = [UInt8](repeating: 0, count: 64)
            while Glibc.read(interrupt.read, &drain, drain.count) > 0 {}
            let woken = state.withLock { state -> Bool in
                let now = Monotonic.seconds()
                let before = state.holds.values.count { $0.woken != nil }
                for (i, (uid, fd, key)) in watched.enumerated() where fds[i].revents != 0 {
                    guard var held = state.holds[uid] else { continue }
                    if let key {
                        guard held.sockets.contains(where: { $0.fd == fd }) else { continue }
                        if key.transport == .udp {
                            Self.datagrams(fd, key: key, held: &held, now: now)
                        } else {
                            Self.accept(fd, key: key, held: &held, now: now)
                        }
                    } else {
                        Self.read(fd, held: &held, now: now)
                    }
                    state.holds[uid] = held
                }
                // A connection left open long enough is a client too.
                for (uid, var held) in state.holds where held.woken == nil {
                    for c in held.connections {
                        if held.hold.rule.connection(from: c.from, sentBytes: c.bytes.count, openSeconds: now - c.openedAt) == true {
                            Self.wake(&held, port: PortKey(c.port, .tcp), from: c.from)
                        }
                    }
                    state.holds[uid] = held
                }
                return state.holds.values.count { $0.woken != nil } > before
            }
            // A scheduler waiting on `current` hears of it now.
            if woken {
                var byte: UInt8 = 1
                _ = Glibc.write(self.woke.write, &byte, 1)
            }
        }
    }

    /// An address's A2S challenge: FNV-1a of the secret, the address and its port.
    static func challenge(for address: IPAddress?, port: in_port_t) -> [UInt8] {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in withUnsafeBytes(of: secret, Array.init) + (address?.bytes ?? []) + withUnsafeBytes(of: port, Array.init) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return withUnsafeBytes(of: hash.littleEndian) { Array($0.prefix(4)) }
    }

    static func wake(_ held: inout Held, port: PortKey, from: IPAddress?) {
        guard held.woken == nil else { return }
        held.woken = PortHoldState.Wake(uid: held.hold.uid, port: port, from: from?.description ?? "")
    }

    /// Up to 64 datagrams waiting on a held UDP port, each judged by the server's rule.
    static func datagrams(_ fd: Int32, key: PortKey, held: inout Held, now: Double) {
        var buffer = [UInt8](repeating: 0, count: 1500)
        for _ in 0..<64 {
            var addr = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT), $0, &length)
                }
            }
            guard n >= 0 else { return }
            let from = address(addr)
            let bytes = Array(buffer[..<n])
            let lastSeen = from.flatMap { held.lastSeen[$0] }
            switch held.hold.rule.datagram(
                bytes, from: from, lastSeen: lastSeen, now: now, challenge: challenge(for: from, port: addr.sin_port))
            {
            case .answer(let reply):
                _ = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, Int32(MSG_DONTWAIT), $0, length) }
                }
            case .wake:
                wake(&held, port: key, from: from)
            case .note:
                // Bounded: a flood of spoofed sources forgets the oldest.
                if held.lastSeen.count >= 1024 { held.lastSeen = held.lastSeen.filter { now - $0.value <= WakeRule.confirmSeconds } }
                if let from, held.lastSeen.count < 1024 { held.lastSeen[from] = now }
            case .ignore:
                continue
            }
        }
    }

    static func accept(_ fd: Int32, key: PortKey, held: inout Held, now: Double) {
        for _ in 0..<16 {
            var addr = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let client = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            }
            guard client >= 0 else { return }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            let from = address(addr)
            guard held.connections.count < WakeRule.heldConnections,
                held.hold.rule.connection(from: from, sentBytes: 0, openSeconds: 0) != false
            else {
                Glibc.close(client)
                continue
            }
            held.connections.append(Connection(fd: client, port: key.port, from: from, openedAt: now))
        }
    }

    /// What a held connection sent (kept for the game, bounded); one that closed is dropped.
    static func read(_ fd: Int32, held: inout Held, now: Double) {
        guard let i = held.connections.firstIndex(where: { $0.fd == fd }) else { return }
        var buffer = [UInt8](repeating: 0, count: 16384)
        let room = WakeRule.heldBytes - held.connections[i].bytes.count
        let n = recv(fd, &buffer, min(buffer.count, room), Int32(MSG_DONTWAIT))
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            Glibc.close(fd)
            held.connections.remove(at: i)
            return
        }
        guard n > 0 else { return }
        held.connections[i].bytes += buffer[..<n]
        let c = held.connections[i]
        if held.hold.rule.connection(from: c.from, sentBytes: c.bytes.count, openSeconds: now - c.openedAt) == true {
            wake(&held, port: PortKey(c.port, .tcp), from: c.from)
        }
    }

    // MARK: - Handing a connection to the game

    /// Connects to the game, sends what the client sent while it slept, then copies both ways
    /// until either side ends.
    static func relay(_ connection: Connection, host: String) {
        defer { Glibc.close(connection.fd) }
        guard let game = try? TCPConnect.open(host: host, port: connection.port, timeoutMilliseconds: 5000) else { return }
        defer { Glibc.close(game) }
        guard write(game, connection.bytes) else { return }
        var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: game, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while poll(&fds, 2, -1) > 0 {
            for (from, to) in [(0, 1), (1, 0)] where fds[from].revents != 0 {
                let n = recv(fds[from].fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { return }
                if n > 0, !write(fds[to].fd, Array(buffer[..<n])) { return }
            }
        }
    }

    /// Writes all of `bytes` to a non-blocking socket, waiting while it is full.
    static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
            } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&p, 1, 30_000) == 1 else { return false }
            } else {
                return false
            }
        }
        return true
    }
}
