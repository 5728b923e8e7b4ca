import PeonStore
import PeonSystem
import Testing

/// Per-process metrics merge into SQLite: two processes' flushes add up, label values are escaped.
@Suite struct MetricsRecorderTests {
    let temporary = TemporaryDirectory()

    @Test func flushesFromTwoConnectionsAddUp() throws {
        let a = try Store(path: temporary.path + "/peon.db")
        let b = try Store(path: temporary.path + "/peon.db")
        let (one, two) = (MetricsRecorder(), MetricsRecorder())
        let labels = [("route", "/api/v1/servers"), ("method", "GET"), ("status", "200")]
        for _ in 0..<3 { one.increment("peon_http_requests_total", labels: labels) }
        two.increment("peon_http_requests_total", labels: labels, by: 2)
        one.observe("peon_http_request_duration_seconds", labels: labels, seconds: 0.002)
        two.observe("peon_http_request_duration_seconds", labels: labels, seconds: 100)
        two.observe("peon_http_request_duration_seconds", labels: labels, seconds: .nan)
        try a.write { tx in try one.flush(into: tx, now: 1) }
        try b.write { tx in try two.flush(into: tx, now: 2) }
        // A second flush adds nothing: what was flushed is gone from memory.
        try a.write { tx in try one.flush(into: tx, now: 3) }
        let counters = try a.read { tx in try tx.counters(named: "peon_http_requests_total") }
        #expect(counters.map(\.1) == [5])
        let h = try #require(try a.read { tx in try tx.histograms(named: "peon_http_request_duration_seconds") }.first)
        #expect(h.count == 3 && h.sum > 100 && h.sum < 100.01)
        // 0.002 → the 0.005 bucket, NaN → 0 → the first, 100 s → +Inf only.
        #expect(h.buckets[0] == 1 && h.buckets[1] == 1 && h.buckets.reduce(0, +) == 2)
    }

    @Test func labelValuesAreEscapedAndBounded() {
        #expect(MetricKey.render([("client", "a\"b\\c\nd")]) == #"client="a\"b\\c\nd""#)
        #expect(MetricKey.render([("client", String(repeating: "x", count: 10_000))]).count < 220)
    }

    @Test func hostileLabelFloodsStopAtACap() throws {
        let recorder = MetricsRecorder()
        for n in 0..<10_000 { recorder.increment("peon_auth_failures_total", labels: [("client", "10.0.\(n / 256).\(n % 256)")]) }
        let store = try Store(path: temporary.path + "/peon.db")
        try store.write { tx in try recorder.flush(into: tx, now: 1) }
        let rows = try store.read { tx in try tx.counters(named: "peon_auth_failures_total", limit: 100_000) }
        #expect(rows.count == 4096)
    }
}
