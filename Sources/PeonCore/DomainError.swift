/// What the domain refuses, independent of any transport. `PeonAPI/ErrorMapping.swift` maps it to HTTP.
public enum DomainError: Error, Sendable, Equatable {
    /// A field failed validation; `reason` is safe to show to the caller.
    case invalid(field: String, reason: String)
    case notFound(kind: String, id: String)
    /// Required plan settings the request did not give, in plan order.
    case missingSettings([String])
    /// The thing exists already or is in a state that forbids the action.
    case conflict(String)
    /// No port group is free for a new server.
    case noFreePorts(String)
    /// Too many unfinished jobs (of one server or of all): the caller should retry later.
    case tooManyJobs(String)
}
