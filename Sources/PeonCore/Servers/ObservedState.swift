/// What a platform reports about a server's workload, in Peon's words rather than an engine's.
///
/// The store and the PEON wire format keep the `name` (PEON's `container_state` strings), so a
/// platform other than Docker maps its own states here once, in its adapter.
public enum ObservedState: Sendable, Hashable {
    case created
    case running
    case restarting
    case paused
    case removing
    /// Stopped: on its own or by Peon. The code and OOM flag decide whether it was a crash.
    case exited(code: Int, oom: Bool)
    case dead
    /// The platform has no workload for the server.
    case missing
    /// The node that holds the server is down or drained (multi-node platforms only).
    case nodeDown
    case unknown

    /// The word stored on the server row and shown as `container_state`.
    public var name: String {
        switch self {
        case .created: "created"
        case .running: "running"
        case .restarting: "restarting"
        case .paused: "paused"
        case .removing: "removing"
        case .exited: "exited"
        case .dead: "dead"
        case .missing: "missing"
        case .nodeDown: "node_down"
        case .unknown: "unknown"
        }
    }

    /// Not running and not going to without Peon: exited, dead.
    public var isStopped: Bool {
        switch self {
        case .exited, .dead: true
        default: false
        }
    }

    /// A stored `name` back as a state (exit details are not stored: code 0, no OOM).
    public init(name: String) {
        self =
            switch name {
            case "created": .created
            case "running": .running
            case "restarting": .restarting
            case "paused": .paused
            case "removing": .removing
            case "exited": .exited(code: 0, oom: false)
            case "dead": .dead
            case "missing": .missing
            case "node_down": .nodeDown
            default: .unknown
            }
    }
}
