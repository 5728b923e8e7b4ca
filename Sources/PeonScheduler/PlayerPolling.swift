import Logging
import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem

extension Scheduler {
    /// Log tails read for counting players.
    static let playerLogBytes = 256 * 1024

    /// Counts the players (every `PEON_PLAYER_POLL_SECONDS`, on the housekeeping thread) of every running server whose plan says how, records them, and stops
    /// servers idle for their `idle_stop` minutes (the stop job the API's stop enqueues).
    func pollPlayers(store: Store, platform: any ServerPlatform) throws {
        let (servers, states) = try store.read { tx in
            (try tx.servers(), Dictionary(try tx.playerStates().map { ($0.uid, $0) }) { a, _ in a })
        }
        var queries: [String: PlayerQuery?] = [:]
        for server in servers where !Self.stopping {
            let uid = server.uid.description
            let running = server.observedState == "running" && server.desiredState == "running"
            if queries[server.uid.game.rawValue] == nil {
                let plan = try store.read { tx in try tx.planDocument(server.uid.game) }.flatMap { try? JSON.parse($0) }
                queries[server.uid.game.rawValue] = .some(try? PlayerQuery.parse(plan?["metadata"]?["players"]))
            }
            let query = queries[server.uid.game.rawValue] ?? nil
            let counted = running ? query.flatMap { count($0, server: server, platform: platform) } : nil
            // Nothing to record: no write transaction for servers nobody counts.
            if counted == nil, let known = states[uid], known.players == nil, known.maxPlayers == nil, known.idleSince == nil { continue }
            let now = WallClock.now()
            try store.write { tx in
                guard let state = try tx.playerState(server: uid), var fresh = try tx.server(server.uid) else { return }
                let decision = IdleStop.decide(
                    players: counted?.players, idleSince: state.idleSince, idleMinutes: state.idleStop, now: now,
                    minuteSeconds: configuration.idleMinuteSeconds)
                try tx.setPlayers(server: uid, players: counted?.players, maxPlayers: counted?.max, idleSince: decision.idleSince)
                guard decision.stop, fresh.desiredState == "running", try tx.pendingJobs(server: uid).isEmpty else { return }
                fresh.desiredState = "stopped"
                try tx.updateServer(fresh, now: now)
                try tx.enqueueJob(server: uid, .stop(reason: .idle), now: now)
                // With wake_on_connect, its node holds its ports once it stopped (`SleepWatcher`).
                try tx.setSleeping(server: uid, true)
                try tx.emitEvent(.idleStop, server: uid, detail: ["idle_minutes": .int(state.idleStop ?? 0)], now: now)
                logger.info("server idle, stopping", metadata: ["server.uid": "\(uid)", "idle.minutes": "\(state.idleStop ?? 0)"])
            }
        }
        Wakeup.notify(directory: configuration.wakeupDir)
    }

    /// Players and maximum (nil maximum when the game does not say), or nil when unknown. The
    /// server's node asks: the game's port is published there, its log is on its disk.
    func count(_ query: PlayerQuery, server: ServerRecord, platform: any ServerPlatform) -> (players: Int, max: Int?)? {
        let maxSetting = server.settings.first { $0.0 == "MAX_PLAYERS" }.flatMap { CheckedNumber.int($0.1, in: 0...100_000) }
        guard let node = try? platform.channel(for: server.uid) else { return nil }
        switch query {
        case .a2s(let name):
            guard let port = (name.flatMap { n in server.ports.first { $0.name == n } } ?? server.ports.first)?.port else { return nil }
            guard let info = (try? node.a2sInfo(port: port)) ?? nil else { return nil }
            return (info.players, info.max)
        case .luanti:
            guard let log = (try? node.tail(server.uid, path: PlayerQuery.defaultLog, limit: Self.playerLogBytes)) ?? nil,
                let players = PlayerQuery.luantiPlayers(log: log)
            else { return nil }
            return (players, maxSetting)
        case .log(let join, let leave, let file):
            guard let log = (try? node.tail(server.uid, path: file, limit: Self.playerLogBytes)) ?? nil else { return nil }
            return (PlayerQuery.logPlayers(log: log, join: join, leave: leave), maxSetting)
        }
    }
}
