/// Peon's reconcile, as a function: desired state, observed state, crash history and the time in;
/// the changes to make out. No store, no platform, no clock, so its whole table is unit-tested.
///
/// The scheduler feeds it from the event stream (one exit) and from the periodic full listing
/// (exits nobody saw while the scheduler or the engine was down), and applies the actions in one
/// write transaction.
public enum Reconciler {
    /// A server as the store holds it, with what the reconcile needs to know about its jobs.
    public struct Desired: Sendable, Equatable {
        public var uid: ServerUID
        public var wantsRunning: Bool
        /// The stored observed state and workload reference.
        public var observed: String
        public var ref: String?
        public var crashPolicy: CrashPolicy
        /// A stop, restart, update or removal is pending, or a start is queued: an exit now was asked for.
        public var exitExpected: Bool

        public init(
            uid: ServerUID, wantsRunning: Bool, observed: String, ref: String?, crashPolicy: CrashPolicy = CrashPolicy(),
            exitExpected: Bool = false
        ) {
            self.uid = uid
            self.wantsRunning = wantsRunning
            self.observed = observed
            self.ref = ref
            self.crashPolicy = crashPolicy
            self.exitExpected = exitExpected
        }
    }

    /// A workload the platform reports for a server.
    public struct Observed: Sendable, Equatable {
        public var ref: String
        public var state: ObservedState
        /// Whether `state` carries the real exit code and OOM flag (a listing may not): an exit
        /// without them decides nothing.
        public var exitKnown: Bool

        public init(ref: String, state: ObservedState, exitKnown: Bool = true) {
            self.ref = ref
            self.state = state
            self.exitKnown = exitKnown
        }
    }

    /// One change for the scheduler to make, in order.
    public enum Action: Sendable, Equatable {
        /// Store the observed state and workload reference (nil: none).
        case observe(ServerUID, state: String, ref: String?)
        /// A clean exit (code 0, no OOM) of a server that should run: it stopped by hand or the game quit.
        case leaveStopped(ServerUID, state: String)
        case recordCrash(ServerUID, exitCode: Int, oom: Bool, at: Int64)
        case restart(ServerUID, notBefore: Int64)
        case giveUp(ServerUID, state: String, reason: String)
    }

    /// The exit of a server's workload: nothing when it should not run or the exit was asked for;
    /// a stop for a clean exit, as in Wings; otherwise a crash under the crash policy.
    /// - Parameter crashes: times of this server's earlier crashes (this one excluded).
    public static func exited(_ server: Desired, state: ObservedState, crashes: [Int64], now: Int64) -> [Action] {
        guard server.wantsRunning, !server.exitExpected, case .exited(let code, let oom) = state.normalizedExit else { return [] }
        if code == 0, !oom { return [.leaveStopped(server.uid, state: state.name)] }
        var actions: [Action] = [.recordCrash(server.uid, exitCode: code, oom: oom, at: now)]
        switch server.crashPolicy.decide(previousCrashes: crashes, now: now) {
        case .restart(let delay): actions.append(.restart(server.uid, notBefore: now + delay))
        case .giveUp(let reason): actions.append(.giveUp(server.uid, state: state.name, reason: reason))
        }
        return actions
    }

    /// The full reconcile: every server's observed state from a complete listing, and the crash
    /// policy for servers that should run and stopped while nobody watched.
    /// - Parameters:
    ///   - observed: the platform's workloads by server (a server absent here has none).
    ///   - crashes: earlier crash times by server.
    public static func compute(
        desired: [Desired], observed: [ServerUID: Observed], crashes: [ServerUID: [Int64]], now: Int64
    ) -> [Action] {
        var actions: [Action] = []
        for server in desired {
            let mine = observed[server.uid]
            let state = mine?.state ?? .missing
            if state.name != server.observed || mine?.ref != server.ref {
                actions.append(.observe(server.uid, state: state.name, ref: mine?.ref))
            }
            // An exit of another workload than the one Peon made is not this server's crash.
            guard let mine, mine.exitKnown, server.ref == nil || server.ref == mine.ref else { continue }
            actions += exited(server, state: state, crashes: crashes[server.uid] ?? [], now: now)
        }
        return actions
    }
}

extension ObservedState {
    /// `dead` is an exit whose code the engine lost: a crash.
    fileprivate var normalizedExit: ObservedState {
        if case .dead = self { return .exited(code: -1, oom: false) }
        return self
    }
}
