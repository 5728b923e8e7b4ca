import PeonHTTP
import PeonJSON
import PeonStore

/// `GET /api/v1/nodes`: the cluster's nodes as the scheduler mirrors them (Swarm), with the servers
/// each holds; an empty list on one machine. The API never asks the platform itself.
enum NodeRoutes {
    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/nodes", scope: .read) { _, context, _, _ in
            let (nodes, servers) = try context.store.read { tx in (try tx.nodes(), try tx.servers()) }
            return .json(
                .array(
                    nodes.map { node in
                        .object([
                            ("name", .string(node.name)),
                            ("address", .string(node.address)),
                            ("state", .string(node.state)),
                            ("availability", .string(node.availability)),
                            ("memory_bytes", .int(Int(node.memoryBytes))),
                            ("cpus", .number(Double(node.nanoCPUs) / 1e9)),
                            ("labels", .object(node.labels.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })),
                            ("servers", .array(servers.filter { $0.node == node.name }.map { JSON.string($0.uid.description) })),
                        ])
                    }))
        }
    }
}
