public import PeonCore
import PeonJSON

extension Transaction {
    /// Replaces the mirrored node list with what the platform reports now.
    public func replaceNodes(_ nodes: [ClusterNode], now: Int64) throws(StoreError) {
        try query("DELETE FROM nodes")
        for node in nodes {
            let labels = JSON.object(node.labels.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })
            try query(
                "INSERT INTO nodes (name, address, state, availability, memory_bytes, nano_cpus, labels, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(node.name), .text(node.address), .text(node.state), .text(node.availability), .integer(node.memoryBytes),
                    .integer(node.nanoCPUs), .text(labels.text), .integer(now),
                ])
        }
    }

    public func nodes() throws(StoreError) -> [ClusterNode] {
        try query("SELECT name, address, state, availability, memory_bytes, nano_cpus, labels FROM nodes ORDER BY name").map { r in
            let labels = (try? JSON.parse(r[6].text ?? "{}"))?.objectValue ?? []
            return ClusterNode(
                name: r[0].text ?? "", address: r[1].text ?? "", state: r[2].text ?? "unknown", availability: r[3].text ?? "unknown",
                memoryBytes: r[4].integer ?? 0, nanoCPUs: r[5].integer ?? 0,
                labels: Dictionary(labels.compactMap { k, v in v.stringValue.map { (k, $0) } }, uniquingKeysWith: { a, _ in a }))
        }
    }

    /// Records the node that holds a server (nil: none, or one machine).
    public func setServerNode(_ uid: String, node: String?) throws(StoreError) {
        try query(
            "UPDATE servers SET node = ? WHERE uid = ? AND node IS NOT ?",
            [node.map(SQLValue.text) ?? .null, .text(uid), node.map(SQLValue.text) ?? .null])
    }
}
