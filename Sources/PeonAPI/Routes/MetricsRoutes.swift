import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /metrics`: Prometheus text, without a key, only when nginx's `location = /metrics` let
/// the client in (loopback and `PEON_METRICS_ALLOW`) and said so in a FastCGI parameter.
///
/// Everything comes from SQLite: each API process adds its counters there once a second (its
/// metrics thread), the scheduler its Docker latencies; jobs, servers and the heartbeat are rows
/// already. This process flushes its own first, so its requests so far are counted.
enum MetricsRoutes {
    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/metrics") { request, context, _ in
            guard request.metricsAllowed else {
                throw HTTPError(
                    status: 403, code: "metrics.forbidden",
                    message: "Metrics are served only to loopback and PEON_METRICS_ALLOW addresses, on /metrics.")
            }
            let now = WallClock.now()
            try? context.store.write { tx in try context.metrics.flush(into: tx, now: now) }
            let text = try context.store.read { tx in try render(tx, context: context, now: now) }
            return Response(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: Array(text.utf8))
        }
    }

    /// Processes that did not report for this long are gone (killed without a goodbye).
    static let processFreshness: Int64 = 10

    static func render(_ tx: Transaction, context: APIContext, now: Int64) throws -> String {
        var out = PrometheusText()
        out.family("peon_build_info", "gauge", "Peon's version.")
        out.sample("peon_build_info", [("version", context.configuration.version)], 1)

        for (name, help) in [
            ("peon_http_requests_total", "API requests by route (as registered), method and status."),
            ("peon_auth_failures_total", "Requests refused for a missing, invalid, revoked or expired key, by client address."),
            ("peon_audit_refusals_dropped_total", "Refused requests left out of the audit trail (over 60 per key per hour)."),
        ] {
            out.family(name, "counter", help)
            for (key, value) in try tx.counters(named: name) { out.sample(name, rendered: key.labels, Double(value)) }
        }
        out.histograms(
            try tx.histograms(named: "peon_http_request_duration_seconds"), "Time to answer API requests, in the worker.")
        out.histograms(try tx.histograms(named: "peon_docker_api_duration_seconds"), "Docker Engine API calls made by the scheduler.")
        out.histograms(
            try tx.histograms(named: "peon_node_operation_duration_seconds"),
            "Node operations (files, backups, console, players) made by the scheduler, in its process or through a node agent.")

        let processes = try tx.apiProcesses(since: now - processFreshness)
        out.family("peon_api_workers", "gauge", "Configured API worker processes (PEON_WORKERS).")
        out.sample("peon_api_workers", [], Double(context.configuration.workers))
        out.family("peon_api_worker_processes", "gauge", "API worker processes that reported in the last 10 s.")
        out.sample("peon_api_worker_processes", [], Double(processes.count))
        out.family("peon_api_threads", "gauge", "Request threads of the live API worker processes.")
        out.sample("peon_api_threads", [], Double(processes.reduce(0) { $0 + $1.threads }))
        out.family("peon_api_busy_threads", "gauge", "Threads answering a request, as each process last reported (once a second).")
        out.sample("peon_api_busy_threads", [], Double(processes.reduce(0) { $0 + $1.busy }))

        let jobs = try tx.jobMetrics()
        out.family("peon_jobs", "gauge", "Jobs on record by kind and state (finished ones are pruned by PEON_RETAIN_*).")
        for j in jobs { out.sample("peon_jobs", [("kind", j.kind), ("state", j.state)], Double(j.count)) }
        out.family("peon_job_duration_seconds", "summary", "Run time of finished jobs on record, by kind and state.")
        for j in jobs where j.timed > 0 {
            out.sample("peon_job_duration_seconds_sum", [("kind", j.kind), ("state", j.state)], Double(j.seconds))
            out.sample("peon_job_duration_seconds_count", [("kind", j.kind), ("state", j.state)], Double(j.timed))
        }

        let beat = try tx.meta("scheduler.heartbeat").flatMap { Int64($0) } ?? 0
        out.family("peon_scheduler_up", "gauge", "1 when the scheduler holds its lock and its heartbeat is fresh.")
        out.sample("peon_scheduler_up", [], ServerRoutes.schedulerRunning(heartbeat: "\(beat)", context) ? 1 : 0)
        if beat > 0 {
            out.family("peon_scheduler_heartbeat_age_seconds", "gauge", "Seconds since the scheduler's last heartbeat.")
            out.sample("peon_scheduler_heartbeat_age_seconds", [], Double(max(now - beat, 0)))
        }

        let servers = try tx.serverMetrics()
        out.family("peon_server_state", "gauge", "1 for each server's observed container state.")
        for s in servers { out.sample("peon_server_state", [("server", s.uid), ("game", s.game), ("state", s.observedState)], 1) }
        out.family("peon_server_desired_running", "gauge", "1 when the server should run, 0 when it should be stopped.")
        for s in servers { out.sample("peon_server_desired_running", [("server", s.uid)], s.desiredState == "running" ? 1 : 0) }
        out.family("peon_server_cpu_percent", "gauge", "CPU use at the latest sample, percent of one core.")
        for s in servers { if let v = s.cpuPercent { out.sample("peon_server_cpu_percent", [("server", s.uid)], v) } }
        out.family("peon_server_memory_bytes", "gauge", "Memory use at the latest sample.")
        for s in servers { if let v = s.memory { out.sample("peon_server_memory_bytes", [("server", s.uid)], Double(v)) } }
        out.family("peon_server_memory_limit_bytes", "gauge", "Memory limit at the latest sample.")
        for s in servers { if let v = s.memoryLimit { out.sample("peon_server_memory_limit_bytes", [("server", s.uid)], Double(v)) } }
        out.family("peon_server_crashes_total", "counter", "Crashes (unexpected exits) on record.")
        for s in servers { out.sample("peon_server_crashes_total", [("server", s.uid)], Double(s.crashes)) }
        // Players only where the plan says how to count them: unknown is omitted, never shown as 0.
        out.family("peon_server_players", "gauge", "Players on the server at the last count.")
        for s in servers { if let v = s.players { out.sample("peon_server_players", [("server", s.uid)], Double(v)) } }
        out.family("peon_server_max_players", "gauge", "The server's player limit.")
        for s in servers { if let v = s.maxPlayers { out.sample("peon_server_max_players", [("server", s.uid)], Double(v)) } }
        return out.text
    }
}

/// The Prometheus text exposition format (0.0.4): `# HELP`, `# TYPE`, then samples.
struct PrometheusText {
    var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        sample(name, rendered: MetricKey.render(labels), value)
    }

    mutating func sample(_ name: String, rendered labels: String, _ value: Double) {
        text += labels.isEmpty ? name : "\(name){\(labels)}"
        text += " \(Self.format(value))\n"
    }

    mutating func histograms(_ rows: [StoredHistogram], _ help: String) {
        guard let name = rows.first?.key.name else { return }
        family(name, "histogram", help)
        for h in rows {
            let prefix = h.key.labels.isEmpty ? "" : h.key.labels + ","
            var cumulative: Int64 = 0
            for (i, bound) in MetricsRecorder.bounds.enumerated() {
                cumulative += i < h.buckets.count ? h.buckets[i] : 0
                sample(name + "_bucket", rendered: prefix + "le=\"\(Self.format(bound))\"", Double(cumulative))
            }
            sample(name + "_bucket", rendered: prefix + "le=\"+Inf\"", Double(h.count))
            sample(name + "_sum", rendered: h.key.labels, h.sum)
            sample(name + "_count", rendered: h.key.labels, Double(h.count))
        }
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if let n = Int64(exactly: v) { return "\(n)" }
        return "\(v)"
    }
}
