import PeonSystem
import PeonTLS
import Synchronization

/// The scheduler's idle connections to node agents: an operation takes one when there is one (no
/// TLS handshake: a console line or a config snapshot is a round trip), and gives it back when its
/// answer was read whole. A few per agent, for a few seconds: the agent ends a connection that
/// stays quiet longer (`AgentServer.idleMilliseconds`), so one is never reused as it closes.
/// A connection is taken only with the very keys it was made with (the pool holds them, so no
/// other context can take their place at the same address): after a rotation, only new ones are made.
final class AgentConnections: Sendable {
    static let shared = AgentConnections()
    static let idleSeconds = 10.0
    static let perAgent = 4

    struct Key {
        let address: String
        let keys: TLSContext
    }

    private struct Idle {
        let stream: Handoff<any ByteStream>
        let keys: TLSContext
        let since: Double
    }

    private let idle = Mutex<[String: [Idle]]>([:])

    /// The most recently used connection to `key` that is still quiet; stale ones are closed.
    func take(_ key: Key) -> (any ByteStream)? {
        let now = Monotonic.seconds()
        var stale: [Handoff<any ByteStream>] = []
        let found: Handoff<any ByteStream>? = idle.withLock { all in
            var list = all[key.address] ?? []
            defer { all[key.address] = list.isEmpty ? nil : list }
            while let last = list.popLast() {
                if last.keys === key.keys, now - last.since < Self.idleSeconds, last.stream.value.isQuiet { return last.stream }
                stale.append(last.stream)
            }
            return nil
        }
        for s in stale { s.value.close() }
        return found?.value
    }

    func put(_ key: Key, _ stream: any ByteStream) {
        let extra: Handoff<any ByteStream>? = idle.withLock { all in
            var list = all[key.address] ?? []
            list.append(Idle(stream: Handoff(stream), keys: key.keys, since: Monotonic.seconds()))
            let dropped = list.count > Self.perAgent ? list.removeFirst().stream : nil
            all[key.address] = list
            return dropped
        }
        extra?.value.close()
    }
}
