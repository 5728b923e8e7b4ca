public import PeonCore
import PeonDocker
import PeonJSON
public import PeonPlatform

/// Node-local work on Swarm: on the server's node, through Peon's node agent there (`SwarmAgent`).
extension SwarmPlatform {
    /// Removes the server's folder on its node, then the node's record that it holds the server.
    public func removeFiles(_ uid: ServerUID) throws(PlatformError) {
        let node = try holder(uid)
        try channel(node).remove(uid)
        try label(node.id, [(Self.holdsLabel(uid), nil)])
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
