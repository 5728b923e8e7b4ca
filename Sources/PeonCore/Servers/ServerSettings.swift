public import PeonJSON

/// Resolves a request's settings against a plan: the values a server's container gets.
public enum ServerSettings {
    /// Request keys that are not settings (PEON clients send them in the same object).
    public static let reservedKeys: Set<String> = [
        "description", "start_later", "noclean", "game_uid", "servername", "warcamp", "interval", "epoch_time", "mode",
        "eradicate", "limits", "crash_policy", "idle_stop", "wake_on_connect",
    ]
    public static let maximumValueBytes = 4096

    /// The user's values for the plan's settings, in plan order. Values may be JSON strings,
    /// numbers or booleans; `null` and `""` mean "not given". `STEAM_ID` is never user-set.
    /// Every required setting must be given: the error names all that are missing. The plan's
    /// RCON password, when optional and left without a value or default, is generated (`secret`),
    /// so a game's RCON never listens with an empty or well-known password.
    public static func resolve(
        plan: Plan, request: JSON, previous: [(String, String)] = [], secret: () -> String = randomSecret
    ) throws(DomainError) -> [(String, String)] {
        var given: [String: String] = [:]
        for (key, value) in previous { given[key] = value }
        for (key, value) in request.objectValue ?? [] where !reservedKeys.contains(key) && key != "STEAM_ID" {
            guard plan.settings.contains(where: { $0.key == key }) else { continue }  // the web UI sends every key
            switch value {
            case .null: continue
            case .string, .number, .bool:
                let text = Plan.scalarText(value)!
                guard text.utf8.count <= maximumValueBytes, !text.utf8.contains(0) else {
                    throw .invalid(field: key, reason: "\(key) must be at most \(maximumValueBytes) bytes without NUL characters")
                }
                if text.isEmpty { given.removeValue(forKey: key) } else { given[key] = text }
            default:
                throw .invalid(field: key, reason: "\(key) must be a string, a number or a boolean")
            }
        }
        if let rcon = plan.rcon, given[rcon.password] == nil, let setting = plan.settings.first(where: { $0.key == rcon.password }),
            !setting.required, (setting.defaultValue ?? "").isEmpty
        {
            given[rcon.password] = secret()
        }
        let missing = plan.settings.filter { $0.required && $0.key != "STEAM_ID" && given[$0.key] == nil }.map(\.key)
        guard missing.isEmpty else { throw .missingSettings(missing) }
        return plan.settings.filter { $0.key != "STEAM_ID" }.compactMap { setting in
            given[setting.key].map { (setting.key, $0) }
        }
    }

    /// 24 letters and digits from the system's generator (about 143 bits).
    public static func randomSecret() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet.randomElement(using: &rng)! })
    }
}
