import PeonCore
import PeonJSON
import PeonStore
import PeonSystem

/// PEON's server object (contract §1.3): exact keys, in PEON's order, with PEON's types.
enum ServerObject {
    /// Files in `config/` whose names suggest a secret are never shown (PEON returned the game password).
    static let secretWords = ["pass", "secret", "token", "key", "rcon", "admin", "auth"]

    static func json(_ server: ServerSummary, serversDir: String) -> JSON {
        let state = dockerState(server.observedState)
        return .object([
            ("game_uid", .string(server.uid.game.rawValue)),
            ("servername", .string(server.uid.name)),
            ("container_type", .string(state == "running" ? server.containerType : "unknown")),
            ("build_version", .string(state == "running" ? server.buildVersion : "unknown")),
            ("container_state", .string(state)),
            ("server_state", .string(state)),
            ("server_config", state == "running" ? config(serversDir + "/" + server.uid.relativeDirectory + "/config") : .object([])),
            ("description", .string(server.description.isEmpty ? "None - Please add a description" : server.description)),
            ("time", server.time ?? .null),
        ])
    }

    /// Docker's words only: a server whose container is gone shows as `exited`.
    static func dockerState(_ observed: String) -> String {
        ["created", "running", "exited", "restarting", "paused", "dead", "removing"].contains(observed) ? observed : "exited"
    }

    /// `{file: stripped contents}` of the small regular files in the server's config dir.
    static func config(_ dir: String) -> JSON {
        var members: [(String, JSON)] = []
        for name in Files.list(dir).prefix(64) {
            let lowered = name.lowercased()
            guard !secretWords.contains(where: lowered.contains), let bytes = try? Files.read(dir + "/" + name, limit: 4096),
                let text = String(validating: bytes, as: UTF8.self)
            else { continue }
            members.append((name, .string(text.trimmingWhitespace())))
        }
        return .object(members)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
