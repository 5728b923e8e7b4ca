import PeonCore
import PeonJSON
public import PeonPlatform

/// Resource samples on Swarm: the manager has no stats for tasks on other nodes, so the node
/// agent on the task's node reads the container's cgroup counters and the node's CPU time.
extension SwarmPlatform {
    public func sample(_ ref: ServerRef) throws(PlatformError) -> StatsSample {
        guard let (task, state) = try latestTask(ref), state == .running,
            let container = task["Status"]?["ContainerStatus"]?["ContainerID"]?.stringValue,
            let nodeID = task["NodeID"]?.stringValue, let node = try nodes().first(where: { $0.id == nodeID })
        else { throw .notFound("service \(ref) has no running task") }
        let lines = try onNode(node, "stats", fields: [("C", container)], seconds: 10)
        let started = task["Status"]?["Timestamp"]?.stringValue.flatMap { Timestamp.parse($0) } ?? 0
        guard let sample = Self.statsSample(lines, startedAt: started) else {
            throw .refused("node \(node.name) has no counters for the task's container")
        }
        return sample
    }

    /// The agent's `stats` lines as Docker's counters: container CPU in nanoseconds (cgroup v1
    /// `cpuacct.usage`, v2 `usage_usec`), the node's CPU time in nanoseconds (the `/proc/stat`
    /// `cpu` line in 1/100 s ticks, as Docker counts it), memory without the inactive page cache
    /// (as `docker stats` shows it). Nil without the container's memory or CPU counter.
    static func statsSample(_ lines: [String], startedAt: Int64) -> StatsSample? {
        var values: [String: Int64] = [:]
        var system: UInt64?
        var limit: Int64 = 0
        for line in lines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let key = parts.first else { continue }
            if key == "cpu" {
                // user nice system idle iowait irq softirq steal: Docker's system_cpu_usage.
                let ticks = parts.dropFirst().prefix(8).compactMap { CheckedNumber.integer(String($0), in: 0...Int64.max / 1_000) }
                system = ticks.count == 8 ? UInt64(ticks.reduce(0, { $0 &+ $1 })) &* 10_000_000 : nil
            } else if key == "limit" {
                limit = parts.count == 2 ? CheckedNumber.integer(String(parts[1]), in: 0...Int64.max) ?? 0 : 0
            } else if parts.count == 2, let value = CheckedNumber.integer(String(parts[1]), in: 0...Int64.max) {
                values[String(key), default: 0] = value
            }
        }
        let cpu = values["cpu_ns"].map { UInt64($0) } ?? values["usage_usec"].map { UInt64($0) &* 1_000 }
        guard let memory = values["mem"], let cpu, let system else { return nil }
        let inactive = values["total_inactive_file"] ?? values["inactive_file"] ?? 0
        return StatsSample(
            cpuTotal: cpu, systemTotal: system, onlineCPUs: Int(values["cpus"] ?? 1), memory: max(0, memory - inactive),
            memoryLimit: limit, networkRx: 0, networkTx: 0, startedAt: startedAt)
    }
}
