import PeonCore

/// A server's way from its start to joinable (columns of `servers` kept apart from `ServerRecord`,
/// which the jobs rewrite whole). Milliseconds since the epoch.
public struct ReadinessState: Sendable, Equatable {
    public let uid: String
    public let startedAt: Int64?
    public let readyAt: Int64?
    public let startFailed: Bool

    public var isReady: Bool { Readiness.isReady(startedAt: startedAt, readyAt: readyAt) }
}

extension Transaction {
    /// A start: not ready again until the plan's probe answers.
    public func setStarted(server: String, at milliseconds: Int64) throws(StoreError) {
        try query(
            "UPDATE servers SET started_at = ?, ready_at = NULL, start_failed = 0 WHERE uid = ?",
            [.integer(milliseconds), .text(server)])
    }

    /// The probe answered for the start at `startedAt` (a newer start since leaves it unready).
    public func setReady(server: String, startedAt: Int64, at milliseconds: Int64) throws(StoreError) {
        try query(
            "UPDATE servers SET ready_at = ?, start_failed = 0 WHERE uid = ? AND started_at = ?",
            [.integer(milliseconds), .text(server), .integer(startedAt)])
    }

    /// `start_timeout` passed for the start at `startedAt` with no answer.
    public func setStartFailed(server: String, startedAt: Int64) throws(StoreError) {
        try query(
            "UPDATE servers SET start_failed = 1 WHERE uid = ? AND started_at = ? AND ready_at IS NULL",
            [.text(server), .integer(startedAt)])
    }

    public func readiness(server: String) throws(StoreError) -> ReadinessState? {
        try query("SELECT uid, started_at, ready_at, start_failed FROM servers WHERE uid = ?", [.text(server)]).first.map(Self.readiness)
    }

    /// Servers started and not yet found ready (timed out ones included: they may still come up).
    public func unready() throws(StoreError) -> [ReadinessState] {
        try query(
            "SELECT uid, started_at, ready_at, start_failed FROM servers WHERE started_at IS NOT NULL AND (ready_at IS NULL OR ready_at < started_at)"
        ).map(Self.readiness)
    }

    static func readiness(_ r: Row) -> ReadinessState {
        ReadinessState(uid: r[0].text ?? "", startedAt: r[1].integer, readyAt: r[2].integer, startFailed: r[3].integer == 1)
    }
}
