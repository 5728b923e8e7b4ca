import PeonCore
import PeonCurl
import PeonHTTP
import PeonJSON
import PeonStore

/// The one place an error becomes an HTTP status and code. Exhaustive per error type, so a new
/// case does not compile until it has an answer; anything unknown is a 500 that says nothing more.
enum ErrorMapping {
    static func map(_ error: any Error) -> HTTPError {
        switch error {
        case let e as HTTPError: return e
        case let e as AuthError: return map(e)
        case let e as DomainError: return map(e)
        case let e as StoreError: return map(e)
        default: return HTTPError(status: 500, code: "internal", message: "Internal error; see the API log.")
        }
    }

    static func map(_ error: AuthError) -> HTTPError {
        switch error {
        case .missingKey: HTTPError(status: 401, code: "auth.missing_key", message: "Not authorized: send an X-Api-Key header.")
        case .invalidKey: HTTPError(status: 401, code: "auth.invalid_key", message: "Not authorized: the API key is not valid.")
        case .revokedKey: HTTPError(status: 401, code: "auth.revoked_key", message: "Not authorized: the API key was revoked.")
        case .expiredKey: HTTPError(status: 401, code: "auth.expired_key", message: "Not authorized: the API key has expired.")
        case .scope(let needed):
            HTTPError(status: 403, code: "auth.scope", message: "Forbidden: this action needs a key with the \(needed) scope.")
        }
    }

    static func map(_ error: DomainError) -> HTTPError {
        switch error {
        case .invalid(_, let reason): HTTPError(status: 400, code: "request.invalid", message: reason)
        case .notFound(let kind, let id):
            HTTPError(status: 404, code: "\(kind).not_found", message: "No \(kind) named '\(Identifier.quoted(id))'.")
        case .missingSettings(let keys):
            HTTPError(
                status: 400, code: "settings.missing",
                message: "Missing required settings: \(keys.joined(separator: ", ")).",
                extra: [("missing", .array(keys.map(JSON.string)))])
        case .conflict(let message): HTTPError(status: 409, code: "conflict", message: message)
        case .noFreePorts(let message): HTTPError(status: 409, code: "ports.exhausted", message: message)
        case .tooManyJobs(let message):
            HTTPError(status: 429, code: "jobs.too_many", message: message, headers: [("Retry-After", "5")])
        }
    }

    static func map(_ error: StoreError) -> HTTPError {
        switch error {
        case .busy:
            HTTPError(status: 503, code: "store.busy", message: "The database is busy; retry shortly.", headers: [("Retry-After", "1")])
        case .failed where error.isDiskFull:
            HTTPError(
                status: 507, code: "store.full",
                message: "The disk holding Peon's database is full; nothing was changed. Retry once space is free.",
                headers: [("Retry-After", "30")])
        case .failed where error.isIOError:
            HTTPError(
                status: 503, code: "store.unavailable", message: "The database cannot be written now; nothing was changed. Retry shortly.",
                headers: [("Retry-After", "5")])
        case .constraint, .failed:
            HTTPError(status: 500, code: "internal", message: "Internal error; see the API log.")
        }
    }
}
