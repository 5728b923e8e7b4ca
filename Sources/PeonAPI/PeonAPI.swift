import PeonCore
public import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// The `/api/v1` application: routes, authentication, audit. Built once (before `fork()`), then
/// answers requests with a per-process `APIContext`. It never talks to Docker: actions become
/// jobs in SQLite for the scheduler.
public struct PeonAPI: Sendable {
    let responder: RouterResponder<APIContext>

    public init() {
        var router = Router<APIContext>()
        OrchestratorRoutes.register(on: &router)
        NodeRoutes.register(on: &router)
        PlanRoutes.register(on: &router)
        FileRoutes.register(on: &router)
        ServerRoutes.register(on: &router)
        KeyRoutes.register(on: &router)
        AuditRoutes.register(on: &router)
        MetricsRoutes.register(on: &router)
        WebhookRoutes.register(on: &router)
        responder = router.responder(mapError: ErrorMapping.map)
    }

    /// Answers, counting the request and its latency by route, method and status in the
    /// process's recorder (flushed to SQLite by the worker's metrics thread).
    public func respond(to request: Request, context: APIContext) -> Response {
        let started = Monotonic.seconds()
        context.metrics.requestStarted()
        let (response, route) = responder.respondWithRoute(to: request, context: context)
        context.metrics.requestFinished()
        let method = Self.knownMethods.contains(request.method) ? request.method : "other"
        let labels = [("route", route), ("method", method), ("status", "\(response.status)")]
        context.metrics.increment("peon_http_requests_total", labels: labels)
        context.metrics.observe("peon_http_request_duration_seconds", labels: labels, seconds: Monotonic.seconds() - started)
        return response
    }

    /// Methods counted by name; anything else is `other` (the label set stays bounded).
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
}

/// A route body once the caller is authenticated.
typealias AuthenticatedHandler = @Sendable (Request, APIContext, Parameters, Principal) throws -> Response

extension Router where Context == APIContext {
    /// Adds a route that needs an `X-Api-Key` of at least `scope`. Authenticated requests that may
    /// change something (every method but GET) leave an audit row, whatever their outcome.
    mutating func on(_ method: String, _ path: String, scope: Scope, _ body: @escaping AuthenticatedHandler) {
        on(method, path) { request, context, parameters in
            var principal: Principal?
            var failure: (any Error)?
            var response: Response
            do {
                let caller = try Principal.authenticate(request, store: context.store)
                principal = caller
                guard caller.scope.allows(scope) else { throw AuthError.scope(needed: scope.rawValue) }
                response = try body(request, context, parameters, caller)
            } catch {
                failure = error
                response = ErrorMapping.map(error).response
                if let auth = error as? AuthError, auth.isFailedKey {
                    // Per client address, so a key-guessing source stands out in the metrics.
                    context.metrics.increment(
                        "peon_auth_failures_total", labels: [("client", request.remoteAddress), ("reason", ErrorMapping.map(auth).code)])
                }
            }
            if response.status >= 500 {
                context.logger.error(
                    "request failed",
                    metadata: [
                        "request.id": "\(request.requestID)", "http.method": "\(method)", "http.path": "\(path)",
                        "http.status": "\(response.status)", "error": "\(failure.map(Audit.describe) ?? "")",
                    ])
            }
            // Only callers with a valid key are audited: unauthenticated noise is in nginx's
            // access log (and fail2ban's), and must not be able to grow the database.
            if method != "GET" || Audit.changesState(request), principal != nil {
                Audit.record(request: request, principal: principal, status: response.status, failure: failure, context: context)
            }
            return response
        }
    }
}

/// The audit trail of requests that may change something.
enum Audit {
    /// A one-line description of a failure for logs (HTTP errors by code and message).
    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPError { return "\(e.code): \(e.message)" }
        return "\(error)"
    }

    /// PEON's `GET /server/save/<uid>` makes a backup (and may stop the server to do it).
    static func changesState(_ request: Request) -> Bool { request.rawPath.hasPrefix("/api/v1/server/save/") }

    /// Refused requests (4xx) recorded per key per hour; beyond, they are counted in
    /// `peon_audit_refusals_dropped_total` only, so a key that may do little cannot push the
    /// trail's older rows out of its retention with a flood of refusals.
    static let refusalsPerKeyPerHour = 60

    static func record(request: Request, principal: Principal?, status: Int, failure: (any Error)?, context: APIContext) {
        let result = failure.map { ErrorMapping.map($0).code } ?? "ok"
        let now = WallClock.now()
        let entry = AuditEntry(
            at: WallClock.iso8601(now), keyID: principal?.keyID, clientIP: request.remoteAddress,
            requestID: request.requestID, method: request.method, path: String(request.rawPath.prefix(512)), status: status,
            result: result)
        do {
            let written = try context.store.write { tx in
                if (400..<500).contains(status), let key = principal?.keyID,
                    try tx.auditRefusals(key: key, since: WallClock.iso8601(now - 3600)) >= refusalsPerKeyPerHour
                {
                    return false
                }
                try tx.appendAudit(entry)
                return true
            }
            if !written { context.metrics.increment("peon_audit_refusals_dropped_total", labels: []) }
        } catch {
            context.logger.warning("audit row not written", metadata: ["request.id": "\(request.requestID)", "error": "\(error)"])
        }
    }
}
