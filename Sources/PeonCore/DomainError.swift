/// What the domain refuses, independent of any transport. `PeonAPI/ErrorMapping.swift` maps it to HTTP.
public enum DomainError: Error, Sendable, Equatable {
    /// A field failed validation; `reason` is safe to show to the caller.
    case invalid(field: String, reason: String)
    case notFound(kind: String, id: String)
}
