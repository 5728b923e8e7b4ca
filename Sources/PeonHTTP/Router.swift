/// Path parameters captured by a route, already percent-decoded.
public struct Parameters: Sendable {
    var values: [String: String] = [:]
    public subscript(name: String) -> String { values[name] ?? "" }
}

/// Collects routes; `responder(mapError:)` freezes them into an immutable `RouterResponder`.
///
/// `Context` is what a handler needs per process (a store connection, a logger): built after
/// `fork()`, while the routes are built once before it.
public struct Router<Context> {
    public typealias Handler = @Sendable (Request, Context, Parameters) throws -> Response

    struct Route {
        let method: String
        /// The path as registered (`/api/v1/server/:action/:uid`): a bounded metrics label.
        let path: String
        let pattern: [Segment]
        let handler: Handler
    }

    enum Segment: Equatable {
        case literal(String)
        case parameter(String)
    }

    var routes: [Route] = []

    public init() {}

    /// Adds a route; a pattern segment `:name` captures one path segment.
    public mutating func on(_ method: String, _ path: String, _ handler: @escaping Handler) {
        let pattern = path.split(separator: "/").map { s -> Segment in
            s.hasPrefix(":") ? .parameter(String(s.dropFirst())) : .literal(String(s))
        }
        routes.append(Route(method: method, path: path, pattern: pattern, handler: handler))
    }

    public func responder(mapError: @escaping @Sendable (any Error) -> HTTPError) -> RouterResponder<Context> {
        RouterResponder(routes: routes, mapError: mapError)
    }
}

/// The frozen route table: matches a request, runs its handler, and turns every error into the
/// JSON envelope. This is the one catch site for errors.
public struct RouterResponder<Context>: Sendable {
    let routes: [Router<Context>.Route]
    let mapError: @Sendable (any Error) -> HTTPError

    public func respond(to request: Request, context: Context) -> Response {
        respondWithRoute(to: request, context: context).response
    }

    /// Answers, and names the route that answered (its registered path), or `unmatched`: never
    /// the client's path, so a metrics label cannot be grown by a client.
    public func respondWithRoute(to request: Request, context: Context) -> (response: Response, route: String) {
        var path = "unmatched"
        do {
            let (route, parameters) = try match(request)
            path = route.path
            return (try route.handler(request, context, parameters), path)
        } catch let error as HTTPError {
            return (error.response, path)
        } catch {
            return (mapError(error).response, path)
        }
    }

    /// Finds the route; 404 when no path matches, 405 (with `Allow`) when only the method differs.
    func match(_ request: Request) throws(HTTPError) -> (Router<Context>.Route, Parameters) {
        let raw = request.rawPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        // A trailing slash is tolerated ("/api/v1/plans/"); empty inner segments are not routes.
        let trimmed = raw.last == "" && raw.count > 1 ? raw.dropLast() : raw[...]
        let segments = Array(trimmed)
        var allowed: [String] = []
        for route in routes where route.pattern.count == segments.count {
            var parameters = Parameters()
            var matches = true
            for (i, segment) in route.pattern.enumerated() {
                switch segment {
                case .literal(let literal):
                    matches = literal == segments[i]
                case .parameter(let name):
                    parameters.values[name] = try PercentDecoding.decode(segments[i])
                }
                if !matches { break }
            }
            guard matches else { continue }
            if route.method == request.method { return (route, parameters) }
            allowed.append(route.method)
        }
        if !allowed.isEmpty {
            throw HTTPError(
                status: 405, code: "method.not_allowed",
                message: "The method \(request.method.prefix(16)) is not allowed on this path.",
                headers: [("Allow", allowed.joined(separator: ", "))])
        }
        throw .notFound()
    }
}
