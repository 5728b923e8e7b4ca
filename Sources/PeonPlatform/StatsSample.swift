/// Raw counters of one sample; CPU % needs two of them (`cpuPercent(since:)`).
public struct StatsSample: Sendable, Equatable {
    public let cpuTotal: UInt64
    public let systemTotal: UInt64
    public let onlineCPUs: Int
    public let memory: Int64
    public let memoryLimit: Int64
    public let networkRx: Int64
    public let networkTx: Int64
    public let startedAt: Int64

    public init(
        cpuTotal: UInt64, systemTotal: UInt64, onlineCPUs: Int, memory: Int64, memoryLimit: Int64, networkRx: Int64, networkTx: Int64,
        startedAt: Int64
    ) {
        self.cpuTotal = cpuTotal
        self.systemTotal = systemTotal
        self.onlineCPUs = onlineCPUs
        self.memory = memory
        self.memoryLimit = memoryLimit
        self.networkRx = networkRx
        self.networkTx = networkTx
        self.startedAt = startedAt
    }

    /// Docker's formula: container CPU time over system CPU time, times the CPUs, in percent.
    public func cpuPercent(since previous: StatsSample?) -> Double {
        guard let previous, cpuTotal >= previous.cpuTotal, systemTotal > previous.systemTotal else { return 0 }
        return Double(cpuTotal - previous.cpuTotal) / Double(systemTotal - previous.systemTotal) * Double(max(onlineCPUs, 1)) * 100
    }
}
