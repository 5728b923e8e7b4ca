public import PeonCore

/// Something that happened to a server's workload, in Peon's words.
public struct PlatformEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case created, started, stopped, destroyed, paused, unpaused, restarted
        /// It ended (code when the platform says); whether that was a crash is the reconciler's call.
        case exited(code: Int?)
        case oomKilled
    }

    public let uid: ServerUID
    public let ref: ServerRef
    public let kind: Kind

    public init(uid: ServerUID, ref: ServerRef, kind: Kind) {
        self.uid = uid
        self.ref = ref
        self.kind = kind
    }
}
