public import PeonCore
public import PeonJSON
import PeonSystem

/// A plan file, plan folder or index entry that was refused, and why.
public struct PlanFailure: Sendable {
    public let source: String
    public let gameUID: GameUID?
    /// Every problem found, not only the first.
    public let reasons: [String]

    public var error: String { reasons.joined(separator: "; ") }

    public init(source: String, gameUID: GameUID?, error: String) {
        self.source = source
        self.gameUID = gameUID
        self.reasons = [error]
    }

    public init(source: String, gameUID: GameUID?, error: any Error) {
        self.source = source
        self.gameUID = gameUID
        self.reasons =
            switch error {
            case let plan as PlanError: plan.problems
            case let file as FileError: [file.reason]
            default: ["\(error)"]
            }
    }

    public var json: JSON {
        [
            "source": .string(source), "game_uid": gameUID.map { .string($0.rawValue) } ?? .null, "error": .string(error),
            "reasons": .array(reasons.map { .string($0) }),
        ]
    }
}
