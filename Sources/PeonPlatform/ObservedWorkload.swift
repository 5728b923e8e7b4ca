public import PeonCore

/// A server's workload as the platform reports it, mapped back to the Peon server it belongs to.
public struct ObservedWorkload: Sendable, Equatable {
    public let ref: ServerRef
    public let uid: ServerUID?
    /// A listing may not know exit details (code 0, no OOM); `details` does.
    public let state: ObservedState
    public let labels: [String: String]
    /// The node that holds it (nil on a one-machine platform).
    public let node: String?

    public init(ref: ServerRef, uid: ServerUID?, state: ObservedState, labels: [String: String], node: String? = nil) {
        self.ref = ref
        self.uid = uid
        self.state = state
        self.labels = labels
        self.node = node
    }
}

/// What the image says about itself (PEON's `container_type` and `build_version`).
public struct ImageFacts: Sendable, Equatable {
    public let containerType: String
    public let buildVersion: String

    public init(containerType: String, buildVersion: String) {
        self.containerType = containerType
        self.buildVersion = buildVersion
    }
}

/// What preparing a server's files on its node found.
public struct PreparedFiles: Sendable, Equatable {
    /// The server folder as the engine on that node sees it (bind sources hang off it).
    public let directory: String
    /// The plan's `files` sources (`~!/...`) that exist there; only those are bind-mounted.
    public let existingFiles: Set<String>

    public init(directory: String, existingFiles: Set<String>) {
        self.directory = directory
        self.existingFiles = existingFiles
    }
}
