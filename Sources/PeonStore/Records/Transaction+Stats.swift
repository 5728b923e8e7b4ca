/// One stored resource sample, as `GET /server/stats` shows it.
public struct StatsRecord: Sendable, Equatable {
    public let at: Int64
    public let cpuPercent: Double
    public let memory: Int64
    public let memoryLimit: Int64
    public let networkRx: Int64
    public let networkTx: Int64
    public let uptime: Int64

    public init(at: Int64, cpuPercent: Double, memory: Int64, memoryLimit: Int64, networkRx: Int64, networkTx: Int64, uptime: Int64) {
        self.at = at
        self.cpuPercent = cpuPercent
        self.memory = memory
        self.memoryLimit = memoryLimit
        self.networkRx = networkRx
        self.networkTx = networkTx
        self.uptime = uptime
    }
}

extension Transaction {
    public func insertStats(server: String, _ s: StatsRecord) throws(StoreError) {
        try query(
            """
            INSERT OR REPLACE INTO stats (server_uid, at, cpu_percent, memory, memory_limit, net_rx, net_tx, uptime)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(server), .integer(s.at), .real(s.cpuPercent), .integer(s.memory), .integer(s.memoryLimit), .integer(s.networkRx),
                .integer(s.networkTx), .integer(s.uptime),
            ])
    }

    public func latestStats(server: String) throws(StoreError) -> StatsRecord? {
        try stats(server: server, since: 0, limit: 1).first
    }

    /// The newest `limit` samples taken at or after `since` (unix seconds), oldest first.
    public func stats(server: String, since: Int64, limit: Int) throws(StoreError) -> [StatsRecord] {
        try query(
            """
            SELECT at, cpu_percent, memory, memory_limit, net_rx, net_tx, uptime FROM stats WHERE server_uid = ? AND at >= ?
            ORDER BY at DESC LIMIT ?
            """,
            [.text(server), .integer(since), .integer(Int64(limit))]
        ).reversed().map { r in
            var cpu = 0.0
            if case .real(let v) = r[1] { cpu = v } else if let i = r[1].integer { cpu = Double(i) }
            return StatsRecord(
                at: r[0].integer ?? 0, cpuPercent: cpu, memory: r[2].integer ?? 0, memoryLimit: r[3].integer ?? 0,
                networkRx: r[4].integer ?? 0, networkTx: r[5].integer ?? 0, uptime: r[6].integer ?? 0)
        }
    }
}
