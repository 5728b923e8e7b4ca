public import PeonJSON

/// What to do when a server that should be running exits on its own: restart it after a growing
/// delay, at most `maxRestarts` times within `window`, then give up until a person starts it.
public struct CrashPolicy: Sendable, Equatable {
    public var enabled: Bool
    public var maxRestarts: Int
    public var windowSeconds: Int64
    public var baseDelaySeconds: Int64
    public var maxDelaySeconds: Int64

    public init(
        enabled: Bool = true, maxRestarts: Int = 3, windowSeconds: Int64 = 600, baseDelaySeconds: Int64 = 2, maxDelaySeconds: Int64 = 120
    ) {
        self.enabled = enabled
        self.maxRestarts = maxRestarts
        self.windowSeconds = windowSeconds
        self.baseDelaySeconds = baseDelaySeconds
        self.maxDelaySeconds = maxDelaySeconds
    }

    /// A server's own `crash_policy` (`{"enabled": false}`, `{"max_restarts": 5, "window_seconds": 900}`) over `base`.
    public static func parse(_ value: JSON?, over base: CrashPolicy = CrashPolicy()) throws(DomainError) -> CrashPolicy {
        guard let value, !value.isNull else { return base }
        guard let members = value.objectValue else {
            throw .invalid(field: "crash_policy", reason: "crash_policy must be an object like {\"enabled\": true, \"max_restarts\": 3}")
        }
        var policy = base
        let invalid = DomainError.invalid(
            field: "crash_policy", reason: "crash_policy takes enabled (boolean), max_restarts (0-100) and window_seconds (10-86400)")
        for (key, v) in members {
            switch key {
            case "enabled":
                guard let b = v.boolValue else { throw invalid }
                policy.enabled = b
            case "max_restarts":
                guard let n = CheckedNumber.int(v, in: 0...100) else { throw invalid }
                policy.maxRestarts = n
            case "window_seconds":
                guard let n = CheckedNumber.integer(v, in: 10...86400) else { throw invalid }
                policy.windowSeconds = n
            default: throw invalid
            }
        }
        return policy
    }

    public enum Decision: Sendable, Equatable {
        case restart(afterSeconds: Int64)
        case giveUp(reason: String)
    }

    /// - Parameter previousCrashes: times of earlier crashes of this server (this one excluded).
    public func decide(previousCrashes: [Int64], now: Int64) -> Decision {
        guard enabled else { return .giveUp(reason: "crash restarts are off for this server") }
        let recent = previousCrashes.filter { now - $0 < windowSeconds }.count
        guard recent < maxRestarts else {
            return .giveUp(reason: "crashed \(recent + 1) times within \(windowSeconds) s")
        }
        let delay = baseDelaySeconds << Int64(min(recent, 20))
        return .restart(afterSeconds: min(delay, maxDelaySeconds))
    }
}
