public import PeonJSON

/// One entry of a warplans `plans.json` index, exactly the three keys PEON clients read.
public struct PlanIndexEntry: Sendable, Equatable {
    public let title: String
    public let gameUID: GameUID
    public let planURL: String

    public init(title: String, gameUID: GameUID, planURL: String) {
        self.title = title
        self.gameUID = gameUID
        self.planURL = planURL
    }

    public var json: JSON { ["title": .string(title), "game_uid": .string(gameUID.rawValue), "plan_url": .string(planURL)] }

    /// Parses a `plans.json` list. Bad entries are reported, not fatal: one typo must not hide a catalog.
    public static func parseIndex(_ document: JSON) throws(PlanError) -> (entries: [PlanIndexEntry], problems: [String]) {
        guard let list = document.arrayValue else { throw PlanError(["plans.json must be a JSON list"]) }
        var entries: [PlanIndexEntry] = []
        var problems: [String] = []
        var seen = Set<GameUID>()
        for (i, item) in list.enumerated() {
            guard let uidText = item["game_uid"]?.stringValue else {
                problems.append("entry \(i): game_uid missing or not a string")
                continue
            }
            guard let uid = try? GameUID(validating: uidText) else {
                problems.append("entry \(i): invalid game_uid '\(Identifier.quoted(uidText))'")
                continue
            }
            guard seen.insert(uid).inserted else {
                problems.append("entry \(i): duplicate game_uid '\(uid)'")
                continue
            }
            let title = item["title"]?.stringValue ?? uid.rawValue
            guard title.utf8.count <= 200 else {
                problems.append("entry \(i): title longer than 200 bytes")
                continue
            }
            entries.append(PlanIndexEntry(title: title, gameUID: uid, planURL: item["plan_url"]?.stringValue ?? ""))
        }
        return (entries, problems)
    }
}

/// Why a plan or an index was refused: every problem found, not only the first.
public struct PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}
