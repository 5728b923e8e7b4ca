/// A server as `/metrics` shows it: states, the latest resource sample, crashes.
public struct ServerMetricRow: Sendable {
    public let uid: String
    public let game: String
    public let desiredState: String
    public let observedState: String
    /// The latest stats sample, when there is one.
    public let cpuPercent: Double?
    public let memory: Int64?
    public let memoryLimit: Int64?
    /// Crashes still on record (pruned by age and count like the other history).
    public let crashes: Int64
    /// The last player count and maximum, when the plan says how to count them.
    public let players: Int64?
    public let maxPlayers: Int64?
}

/// Jobs of one kind and state: how many are on record and, for finished ones, their run time.
public struct JobMetricRow: Sendable {
    public let kind: String
    public let state: String
    public let count: Int64
    /// Jobs with both a start and an end time, and the sum of their run time in seconds.
    public let timed: Int64
    public let seconds: Int64
}

extension Transaction {
    public func serverMetrics() throws(StoreError) -> [ServerMetricRow] {
        try query(
            """
            SELECT s.uid, s.game_uid, s.desired_state, s.observed_state, t.cpu_percent, t.memory, t.memory_limit,
                   (SELECT count(*) FROM crashes c WHERE c.server_uid = s.uid), s.players, s.max_players
            FROM servers s
            LEFT JOIN stats t ON t.server_uid = s.uid AND t.at = (SELECT max(at) FROM stats x WHERE x.server_uid = s.uid)
            ORDER BY s.uid
            """
        ).map { r in
            ServerMetricRow(
                uid: r[0].text ?? "", game: r[1].text ?? "", desiredState: r[2].text ?? "", observedState: r[3].text ?? "unknown",
                cpuPercent: r[4] == .null ? nil : r[4].real, memory: r[5].integer, memoryLimit: r[6].integer, crashes: r[7].integer ?? 0,
                players: r[8].integer, maxPlayers: r[9].integer)
        }
    }

    public func jobMetrics() throws(StoreError) -> [JobMetricRow] {
        try query(
            """
            SELECT kind, state, count(*),
                   count(*) FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL),
                   coalesce(sum(finished_at - started_at) FILTER (WHERE started_at IS NOT NULL AND finished_at IS NOT NULL), 0)
            FROM jobs GROUP BY kind, state ORDER BY kind, state
            """
        ).map { r in
            JobMetricRow(
                kind: r[0].text ?? "", state: r[1].text ?? "", count: r[2].integer ?? 0, timed: r[3].integer ?? 0,
                seconds: r[4].integer ?? 0)
        }
    }
}
