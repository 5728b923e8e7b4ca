public import PeonJSON

extension Plan {
    /// The flat settings object of `GET /plan/<game_uid>` (contract §1.4): required keys as `""`,
    /// then optional keys with their defaults, then `description`; `STEAM_ID` left out.
    public var settingsJSON: JSON {
        let visible = settings.filter { $0.key != "STEAM_ID" }
        var members: [(String, JSON)] = visible.filter(\.required).map { ($0.key, .string("")) }
        members += visible.filter { !$0.required }.map { ($0.key, .string($0.defaultValue ?? "")) }
        let text = description.isEmpty ? "A PEON game server for \(gameUID)." : description
        members.append(("description", .string(text)))
        return .object(members)
    }
}
