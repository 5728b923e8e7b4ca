import PeonCore
import PeonJSON
import PeonStore
import PeonSystem

/// PEON's server object (contract §1.3): exact keys, in PEON's order, with PEON's types.
enum ServerObject {
    /// `publicAddress` (`PEON_PUBLIC_ADDRESS`) and `gameBind` (`PEON_GAME_BIND`) say where clients
    /// connect when the server's node does not.
    static func json(_ server: ServerSummary, publicAddress: String? = nil, gameBind: String = "0.0.0.0") -> JSON {
        let state = dockerState(server.observedState)
        let ready = state == "running" && Readiness.isReady(startedAt: server.startedAt, readyAt: server.readyAt)
        // `starting` until the plan's probe says the game accepts players, `start_failed` when its
        // start_timeout passed first, `sleeping` while its ports wait for a player (contract: a
        // string; the bot lowercases it).
        let serverState = Readiness.serverState(
            containerState: state, startedAt: server.startedAt, readyAt: server.readyAt, failed: server.startFailed,
            sleeping: server.sleeping)
        let readyAt: JSON = ready ? server.readyAt.map { .string(WallClock.iso8601($0 / 1000)) } ?? .null : .null
        // Where game clients connect: PEON_PUBLIC_ADDRESS, else the node's address, else the
        // address game ports are published on (null when that is every address of this host).
        let address: String? = publicAddress ?? server.nodeAddress ?? (gameBind == "0.0.0.0" ? nil : gameBind)
        let ports: [JSON] = (server.ports.arrayValue ?? []).map { p -> JSON in
            .object([("name", p["name"] ?? .null), ("port", p["port"] ?? .null), ("protocol", p["proto"] ?? .null)])
        }
        return .object([
            ("game_uid", .string(server.uid.game.rawValue)),
            ("servername", .string(server.uid.name)),
            ("container_type", .string(state == "running" ? server.containerType : "unknown")),
            ("build_version", .string(state == "running" ? server.buildVersion : "unknown")),
            ("container_state", .string(state)),
            ("server_state", .string(serverState)),
            ("server_config", state == "running" ? server.config : .object([])),
            ("description", .string(server.description.isEmpty ? "None - Please add a description" : server.description)),
            ("time", server.time ?? .null),
            // Additive: players while running (null when unknown), idle auto-stop minutes.
            ("players", state == "running" ? server.players.map { .int($0) } ?? .null : .null),
            ("max_players", server.maxPlayers.map { .int($0) } ?? .null),
            ("idle_stop", server.idleStop.map { .int($0) } ?? .null),
            // Not in PEON: an idle stop puts it to sleep, and the first player's packet starts it.
            ("wake_on_connect", .bool(server.wakeOnConnect)),
            // Not in PEON: the node that holds it on Swarm (null on one machine).
            ("node", server.node.map(JSON.string) ?? .null),
            ("address", address.map(JSON.string) ?? .null),
            ("ports", .array(ports)),
            // Not in PEON: joinable, and since when (null while starting or stopped).
            ("ready", .bool(ready)),
            ("ready_at", readyAt),
        ])
    }

    /// Docker's words, and `node_down` (Swarm: the server's node is down or drained); a server
    /// whose container is gone shows as `exited`.
    static func dockerState(_ observed: String) -> String {
        ["created", "running", "exited", "restarting", "paused", "dead", "removing", "node_down"].contains(observed) ? observed : "exited"
    }
}
