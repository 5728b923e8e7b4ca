/// Why a request was not let in. Messages never echo the presented key.
public enum AuthError: Error, Sendable, Equatable {
    case missingKey
    case invalidKey
    case revokedKey
    case expiredKey
    case scope(needed: String)

    /// A key was presented (or was missing) and not accepted; a scope refusal is a valid key.
    var isFailedKey: Bool {
        if case .scope = self { return false }
        return true
    }
}
