import PeonCore
import Testing

@Suite struct PlacementTests {
    let gib: Int64 = 1 << 30
    let port: Set<PortKey> = [PortKey(27960, .tcp)]

    @Test func theNodeWithTheMostUnreservedMemoryWins() {
        let nodes = [
            Placement.Node(name: "a", memoryBytes: 8 * gib, reservedBytes: 6 * gib),
            Placement.Node(name: "b", memoryBytes: 4 * gib),
            Placement.Node(name: "c", memoryBytes: 16 * gib, reservedBytes: 14 * gib),
        ]
        #expect(Placement.choose(nodes, ports: port, memoryBytes: gib)?.name == "b")
    }

    @Test func drainedDownFullOrPortTakenNodesAreSkipped() {
        let nodes = [
            Placement.Node(name: "drained", active: false, memoryBytes: 64 * gib),
            Placement.Node(name: "down", ready: false, memoryBytes: 64 * gib),
            Placement.Node(name: "busy", memoryBytes: 64 * gib, takenPorts: port),
            Placement.Node(name: "full", memoryBytes: 2 * gib, reservedBytes: 2 * gib),
            Placement.Node(name: "ok", memoryBytes: 2 * gib),
        ]
        #expect(Placement.choose(nodes, ports: port, memoryBytes: gib)?.name == "ok")
        #expect(Placement.choose(Array(nodes.prefix(4)), ports: port, memoryBytes: gib) == nil)
    }

    @Test func tiesGoToTheFewestServersThenTheName() {
        let nodes = [
            Placement.Node(name: "b", memoryBytes: 4 * gib, servers: 1), Placement.Node(name: "c", memoryBytes: 4 * gib),
            Placement.Node(name: "a", memoryBytes: 4 * gib),
        ]
        #expect(Placement.choose(nodes, ports: [], memoryBytes: gib)?.name == "a")
    }

    /// Three equal nodes and three equal servers: one server per node.
    @Test func equalServersSpreadOverEqualNodes() {
        var nodes = (1...3).map { Placement.Node(name: "n\($0)", memoryBytes: 4 * gib) }
        var chosen: [String] = []
        for _ in 0..<3 {
            guard let node = Placement.choose(nodes, ports: port, memoryBytes: gib), let i = nodes.firstIndex(of: node) else { break }
            chosen.append(node.name)
            nodes[i].reservedBytes += gib
            nodes[i].servers += 1
        }
        #expect(chosen.sorted() == ["n1", "n2", "n3"])
    }
}
