/// Why a request was not let in. Messages never echo the presented key.
public enum AuthError: Error, Sendable, Equatable {
    case missingKey
    case invalidKey
    case revokedKey
    case scope(needed: String)
}
