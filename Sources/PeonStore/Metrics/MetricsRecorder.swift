import PeonJSON
import Synchronization

/// A process's metrics since its last flush: counters and latency histograms in memory, shared by
/// the process's threads behind one lock, added to SQLite by `flush(into:)`.
///
/// Why SQLite: the API is several forked processes of many threads, and the scheduler another
/// process; the database is already what they all share, and an UPSERT of deltas once a second
/// per process costs nothing next to the requests. `GET /metrics` then reads one consistent view.
public final class MetricsRecorder: Sendable {
    /// Upper bounds (seconds) of the latency buckets; larger observations land only in `+Inf`.
    public static let bounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60]

    struct Histogram {
        var count = 0
        var sum = 0.0
        var buckets = [Int](repeating: 0, count: MetricsRecorder.bounds.count)
    }

    struct Pending {
        var counters: [MetricKey: Int] = [:]
        var histograms: [MetricKey: Histogram] = [:]
    }

    private let pending = Mutex(Pending())
    /// Requests being answered right now by this process's threads.
    private let busyThreads = Atomic<Int>(0)
    public var busy: Int { busyThreads.load(ordering: .relaxed) }
    public func requestStarted() { busyThreads.add(1, ordering: .relaxed) }
    public func requestFinished() { busyThreads.subtract(1, ordering: .relaxed) }
    /// At most this many distinct label sets wait for a flush; beyond, observations are dropped
    /// (hostile label values, such as many client addresses, must not grow memory without end).
    static let maximumKeys = 4096

    public init() {}

    public func increment(_ name: String, labels: [(String, String)], by amount: Int = 1) {
        let key = MetricKey(name: name, labels: MetricKey.render(labels))
        pending.withLock { p in
            guard p.counters[key] != nil || p.counters.count < Self.maximumKeys else { return }
            p.counters[key, default: 0] += amount
        }
    }

    public func observe(_ name: String, labels: [(String, String)], seconds: Double) {
        let key = MetricKey(name: name, labels: MetricKey.render(labels))
        let value = seconds.isFinite ? max(seconds, 0) : 0
        pending.withLock { p in
            guard p.histograms[key] != nil || p.histograms.count < Self.maximumKeys else { return }
            var h = p.histograms[key] ?? Histogram()
            h.count += 1
            h.sum += value
            if let i = Self.bounds.firstIndex(where: { value <= $0 }) { h.buckets[i] += 1 }
            p.histograms[key] = h
        }
    }

    /// Adds what was recorded since the last flush to the database, in the caller's write transaction.
    /// What was taken is lost if the transaction fails (metrics are best effort, requests are not).
    public func flush(into tx: Transaction, now: Int64) throws(StoreError) {
        let taken = pending.withLock { p in
            let t = p
            p = Pending()
            return t
        }
        for (key, value) in taken.counters {
            try tx.addCounter(key, value, now: now)
        }
        for (key, h) in taken.histograms {
            try tx.addHistogram(key, count: h.count, sum: h.sum, buckets: h.buckets)
        }
    }
}

/// A metric name and its rendered label set (`a="x",b="y"`), the primary key of its row.
public struct MetricKey: Hashable, Sendable {
    public let name: String
    public let labels: String

    /// Renders labels in Prometheus text form, escaping `\`, `"` and newlines; values are capped.
    public static func render(_ labels: [(String, String)]) -> String {
        labels.map { name, value in
            var escaped = ""
            for c in value.prefix(200) {
                switch c {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n", "\r\n": escaped += "\\n"
                default: escaped.append(c)
                }
            }
            return "\(name)=\"\(escaped)\""
        }.joined(separator: ",")
    }
}

/// A stored histogram row.
public struct StoredHistogram: Sendable {
    public let key: MetricKey
    public let count: Int64
    public let sum: Double
    public let buckets: [Int64]
}

/// One API process's live thread counts.
public struct APIProcessRow: Sendable {
    public let pid: Int64
    public let threads: Int64
    public let busy: Int64
    public let updatedAt: Int64
}

extension Transaction {
    func addCounter(_ key: MetricKey, _ value: Int, now: Int64) throws(StoreError) {
        try query(
            """
            INSERT INTO metric_counters (name, labels, value, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value, updated_at = excluded.updated_at
            """, [.text(key.name), .text(key.labels), .integer(Int64(value)), .integer(now)])
    }

    func addHistogram(_ key: MetricKey, count: Int, sum: Double, buckets: [Int]) throws(StoreError) {
        var merged = buckets.map(Int64.init)
        var total = Int64(count)
        var totalSum = sum
        if let row = try query(
            "SELECT count, sum, buckets FROM metric_histograms WHERE name = ? AND labels = ?", [.text(key.name), .text(key.labels)]
        ).first {
            total += row[0].integer ?? 0
            totalSum += row[1].real
            let old = Self.bucketArray(row[2].text)
            for i in merged.indices where i < old.count { merged[i] += old[i] }
        }
        try query(
            "INSERT OR REPLACE INTO metric_histograms (name, labels, count, sum, buckets) VALUES (?, ?, ?, ?, ?)",
            [
                .text(key.name), .text(key.labels), .integer(total), .real(totalSum),
                .text(JSON.array(merged.map { .number(Double($0)) }).text),
            ])
    }

    static func bucketArray(_ text: String?) -> [Int64] {
        guard let text, case .array(let items)? = try? JSON.parse(text) else { return [] }
        return items.map { if case .number(let n) = $0, let v = Int64(exactly: n) { v } else { 0 } }
    }

    public func counters(named name: String, limit: Int = 1000) throws(StoreError) -> [(MetricKey, Int64)] {
        try query(
            "SELECT labels, value FROM metric_counters WHERE name = ? ORDER BY value DESC, labels LIMIT ?",
            [.text(name), .integer(Int64(limit))]
        ).map { (MetricKey(name: name, labels: $0[0].text ?? ""), $0[1].integer ?? 0) }
    }

    public func histograms(named name: String) throws(StoreError) -> [StoredHistogram] {
        try query("SELECT labels, count, sum, buckets FROM metric_histograms WHERE name = ? ORDER BY labels", [.text(name)]).map { r in
            StoredHistogram(
                key: MetricKey(name: name, labels: r[0].text ?? ""), count: r[1].integer ?? 0, sum: r[2].real,
                buckets: Self.bucketArray(r[3].text))
        }
    }

    /// Records (or, with `threads` 0, removes) an API process's thread counts.
    public func reportAPIProcess(pid: Int64, threads: Int, busy: Int, now: Int64) throws(StoreError) {
        guard threads > 0 else {
            try query("DELETE FROM api_processes WHERE pid = ?", [.integer(pid)])
            return
        }
        try query(
            "INSERT OR REPLACE INTO api_processes (pid, threads, busy, updated_at) VALUES (?, ?, ?, ?)",
            [.integer(pid), .integer(Int64(threads)), .integer(Int64(busy)), .integer(now)])
    }

    /// API processes that reported since `since` (older rows are processes that died unannounced).
    public func apiProcesses(since: Int64) throws(StoreError) -> [APIProcessRow] {
        try query("SELECT pid, threads, busy, updated_at FROM api_processes WHERE updated_at >= ?", [.integer(since)]).map {
            APIProcessRow(pid: $0[0].integer ?? 0, threads: $0[1].integer ?? 0, busy: $0[2].integer ?? 0, updatedAt: $0[3].integer ?? 0)
        }
    }
}
