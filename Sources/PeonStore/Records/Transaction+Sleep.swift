import PeonCore

/// Sleep and wake (columns of `servers` kept apart from `ServerRecord`, which the jobs rewrite
/// whole): `wake_on_connect` is the user's; `sleeping` is set by the idle stop of such a server and
/// cleared by a wake or by a user's start, stop, restart or removal.
public struct SleepState: Sendable, Equatable {
    public let uid: String
    public let wakeOnConnect: Bool
    public let sleeping: Bool
}

extension Transaction {
    public func sleepState(server: String) throws(StoreError) -> SleepState? {
        try query("SELECT uid, wake_on_connect, sleeping FROM servers WHERE uid = ?", [.text(server)]).first.map(Self.sleepState)
    }

    /// Servers asleep now.
    public func sleepingServers() throws(StoreError) -> [SleepState] {
        try query("SELECT uid, wake_on_connect, sleeping FROM servers WHERE sleeping = 1").map(Self.sleepState)
    }

    /// Turning it off ends a sleep (the server stays stopped).
    public func setWakeOnConnect(server: String, _ on: Bool) throws(StoreError) {
        try query(
            "UPDATE servers SET wake_on_connect = ?, sleeping = CASE WHEN ? THEN sleeping ELSE 0 END WHERE uid = ?",
            [.integer(on ? 1 : 0), .integer(on ? 1 : 0), .text(server)])
    }

    /// Writes only a change (an unchanged flag does not bump `servers.version`).
    public func setSleeping(server: String, _ sleeping: Bool) throws(StoreError) {
        try query(
            "UPDATE servers SET sleeping = ? WHERE uid = ? AND sleeping IS NOT ? AND (wake_on_connect = 1 OR ? = 0)",
            [.integer(sleeping ? 1 : 0), .text(server), .integer(sleeping ? 1 : 0), .integer(sleeping ? 1 : 0)])
    }

    static func sleepState(_ r: Row) -> SleepState {
        SleepState(uid: r[0].text ?? "", wakeOnConnect: r[1].integer == 1, sleeping: r[2].integer == 1)
    }
}
