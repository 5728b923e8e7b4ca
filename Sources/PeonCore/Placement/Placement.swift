/// Where a new server goes on a multi-node platform, as a function of the nodes' state.
///
/// Among nodes that are ready and active (not drained or paused) and have every one of the
/// server's ports free, the one with the most memory left unreserved after the server's memory
/// limit; ties go to the fewest servers, then the name, so the choice is stable. A server never
/// moves: its data stays on the node that holds it.
public enum Placement {
    public struct Node: Sendable, Equatable {
        public var name: String
        public var ready: Bool
        public var active: Bool
        public var memoryBytes: Int64
        /// Memory limits of the servers the node already holds.
        public var reservedBytes: Int64
        public var servers: Int
        public var takenPorts: Set<PortKey>

        public init(
            name: String, ready: Bool = true, active: Bool = true, memoryBytes: Int64, reservedBytes: Int64 = 0, servers: Int = 0,
            takenPorts: Set<PortKey> = []
        ) {
            self.name = name
            self.ready = ready
            self.active = active
            self.memoryBytes = memoryBytes
            self.reservedBytes = reservedBytes
            self.servers = servers
            self.takenPorts = takenPorts
        }

        var unreserved: Int64 { memoryBytes - reservedBytes }
    }

    /// The node for a server needing `ports` and `memoryBytes`; nil when no node can take it.
    public static func choose(_ nodes: [Node], ports: Set<PortKey>, memoryBytes: Int64) -> Node? {
        nodes.filter { $0.ready && $0.active && $0.takenPorts.isDisjoint(with: ports) && $0.unreserved >= memoryBytes }
            .min { a, b in
                (b.unreserved, a.servers, a.name) < (a.unreserved, b.servers, b.name)
            }
    }
}
