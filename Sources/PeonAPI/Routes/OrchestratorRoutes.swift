import PeonCore
import PeonCurl
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// `GET /api/v1/orchestrator`: PEON's `{"version"}` plus what helps an operator.
enum OrchestratorRoutes {
    /// Whether the scheduler's heartbeat is fresh, and when it last beat.
    static func schedulerJSON(_ heartbeat: String?, _ context: APIContext) -> JSON {
        let beat = heartbeat.flatMap { Int64($0) } ?? 0
        let running = ServerRoutes.schedulerRunning(heartbeat: heartbeat, context)
        return .object([("running", .bool(running)), ("heartbeat", beat > 0 ? .string(WallClock.iso8601(beat)) : .null)])
    }

    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/orchestrator", scope: .read) { _, context, _, principal in
            let (plans, migrations, heartbeat) = try context.store.read { tx in
                (
                    try tx.planCount(), try tx.query("SELECT count(*) FROM schema_migrations").first?.first?.integer ?? 0,
                    try tx.meta("scheduler.heartbeat")
                )
            }
            let body: JSON = .object([
                ("version", .string(context.configuration.version)),
                ("name", "peon"),
                ("api", "v1"),
                ("plans", .int(plans)),
                ("workers", .int(context.configuration.workers)),
                ("uptime", .int(Int(WallClock.now() - context.startedAt))),
                ("scheduler", schedulerJSON(heartbeat, context)),
                ("database", .object([("sqlite", .string(Connection.libraryVersion)), ("migrations", .int(Int(migrations)))])),
                ("key", .object([("id", .string(principal.keyID)), ("scope", .string(principal.scope.rawValue))])),
            ])
            return .json(body)
        }
    }
}
