public import PeonCore
import PeonDocker
import PeonJSON
public import PeonPlatform

/// Node-local work on Swarm: on the server's node, through Peon's node agent there (`SwarmAgent`).
extension SwarmPlatform {
    /// Removes the server's folder on its node, then the node's record that it holds the server.
    ///
    /// A destroy removes only the service, so the node's label still names the holder of a
    /// destroyed server's folder. Without a label (lost, or removed by an erase that ended before
    /// its folder went), the usable nodes whose manifests list the uid hold it. Answers whether a
    /// folder was found.
    @discardableResult
    public func removeFiles(_ uid: ServerUID) throws(PlatformError) -> Bool {
        let all = try nodes()
        if let node = all.first(where: { $0.holds(uid) }) {
            let removed = try channel(node).remove(uid) ?? true
            try label(node.id, [(Self.holdsLabel(uid), nil)])
            return removed
        }
        var removed = false
        for node in all where node.usable {
            let channel = try channel(node)
            guard try channel.manifests().contains(where: { $0.0 == uid }) else { continue }
            removed = try channel.remove(uid) ?? true || removed
        }
        return removed
    }

    /// The task's container on its node, and that node's agent.
    public func runningContainer(_ ref: ServerRef) throws(PlatformError) -> (channel: any NodeChannel, container: String) {
        guard let (task, state) = try latestTask(ref), state == .running,
            let container = task["Status"]?["ContainerStatus"]?["ContainerID"]?.stringValue,
            let nodeID = task["NodeID"]?.stringValue, let node = try nodes().first(where: { $0.id == nodeID })
        else { throw .notFound("service \(ref) has no running task") }
        return (try channel(node), container)
    }

    /// Game clients connect to the node that holds the server.
    public func address(of uid: ServerUID) throws(PlatformError) -> String? {
        try nodes().first { $0.holds(uid) }?.address
    }
}
