/// The files of a server's `config/` directory that PEON clients see as `server_config`.
public enum ServerConfig {
    /// Names that suggest a secret are never shown (PEON returned Valheim's game password).
    static let secretWords = ["pass", "secret", "token", "key", "rcon", "admin", "auth"]

    public static func isVisible(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return !name.hasPrefix(".") && !secretWords.contains(where: lowered.contains)
    }
}
