/// What an API key may do. Each scope includes the ones below it.
public enum Scope: String, Sendable, CaseIterable, Comparable {
    /// GET everything.
    case read
    /// Start, stop, restart and the other server actions.
    case operate
    /// Create and remove servers, refresh plans, manage keys.
    case admin

    var rank: Int {
        switch self {
        case .read: 0
        case .operate: 1
        case .admin: 2
        }
    }

    public static func < (a: Scope, b: Scope) -> Bool { a.rank < b.rank }
    public func allows(_ needed: Scope) -> Bool { self >= needed }
}
