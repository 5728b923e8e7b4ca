import Logging
import PeonCore
import PeonJSON
import PeonStore
import PeonSystem

extension Scheduler {
    /// Each UDP query waits at most this long (twice with an A2S challenge).
    static let playerQueryMilliseconds: Int32 = 1000
    /// Log tails read for counting players.
    static let playerLogBytes = 256 * 1024

    /// Counts the players (every `PEON_PLAYER_POLL_SECONDS`, on the housekeeping thread) of every running server whose plan says how, records them, and stops
    /// servers idle for their `idle_stop` minutes (the stop job the API's stop enqueues).
    func pollPlayers(store: Store) throws {
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
            let counted = running ? query.flatMap { count($0, server: server) } : nil
            // Nothing to record: no write transaction for servers nobody counts.
            if counted == nil, let known = states[uid], known.players == nil, known.maxPlayers == nil, known.idleSince == nil { continue }
            let now = WallClock.now()
            try store.write { tx in
                guard let state = try tx.playerState(server: uid), var fresh = try tx.server(server.uid) else { return }
                let decision = IdleStop.decide(players: counted?.players, idleSince: state.idleSince, idleMinutes: state.idleStop, now: now)
                try tx.setPlayers(server: uid, players: counted?.players, maxPlayers: counted?.max, idleSince: decision.idleSince)
                guard decision.stop, fresh.desiredState == "running", try tx.pendingJobs(server: uid).isEmpty else { return }
                fresh.desiredState = "stopped"
                try tx.updateServer(fresh, now: now)
                try tx.enqueueJob(server: uid, kind: .stop, arguments: ["reason": "idle"], now: now)
                try tx.emitEvent(.idleStop, server: uid, detail: ["idle_minutes": .int(state.idleStop ?? 0)], now: now)
                logger.info("server idle, stopping", metadata: ["server.uid": "\(uid)", "idle.minutes": "\(state.idleStop ?? 0)"])
            }
        }
        Wakeup.notify(directory: configuration.wakeupDir)
    }

    /// Players and maximum (nil maximum when the game does not say), or nil when unknown.
    func count(_ query: PlayerQuery, server: ServerRecord) -> (players: Int, max: Int?)? {
        let maxSetting = server.settings.first { $0.0 == "MAX_PLAYERS" }.flatMap { CheckedNumber.int($0.1, in: 0...100_000) }
        switch query {
        case .a2s(let name):
            guard let port = (name.flatMap { n in server.ports.first { $0.name == n } } ?? server.ports.first)?.port else { return nil }
            let host = configuration.gameBind == "0.0.0.0" ? "127.0.0.1" : configuration.gameBind
            var reply = UDPQuery.exchange(
                host: host, port: port, payload: PlayerQuery.a2sRequest(), timeoutMilliseconds: Self.playerQueryMilliseconds)
            if let challenge = reply.flatMap(PlayerQuery.a2sChallenge) {
                reply = UDPQuery.exchange(
                    host: host, port: port, payload: PlayerQuery.a2sRequest(challenge: challenge),
                    timeoutMilliseconds: Self.playerQueryMilliseconds)
            }
            return reply.flatMap(PlayerQuery.a2sInfo).map { ($0.players, $0.max) }
        case .luanti:
            let log = Files.tail(
                server.uid.relativeDirectory + "/" + PlayerQuery.defaultLog, in: configuration.serversDir, limit: Self.playerLogBytes)
            return log.flatMap(PlayerQuery.luantiPlayers).map { ($0, maxSetting) }
        case .log(let join, let leave, let file):
            let log = Files.tail(server.uid.relativeDirectory + "/" + file, in: configuration.serversDir, limit: Self.playerLogBytes)
            return log.map { (PlayerQuery.logPlayers(log: $0, join: join, leave: leave), maxSetting) }
        }
    }
}
