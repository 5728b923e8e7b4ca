public import PeonCore

/// A plan as the catalog holds it.
public struct StoredPlan: Sendable, Equatable {
    public let entry: PlanIndexEntry
    /// Listed in the plans.json index (only listed plans appear in `GET /plans`, as in PEON).
    public let listed: Bool
    public let documentText: String
    public let source: String
    /// The plan's `actions/` files, validated.
    public let actions: PlanActions

    public init(entry: PlanIndexEntry, listed: Bool, documentText: String, source: String, actions: PlanActions = .none) {
        self.entry = entry
        self.listed = listed
        self.documentText = documentText
        self.source = source
        self.actions = actions
    }
}

extension Transaction {
    /// Listed plans sorted by title as PEON sorts them (case-sensitive, byte order).
    public func listedPlans() throws(StoreError) -> [PlanIndexEntry] {
        try query("SELECT title, game_uid, plan_url FROM plans WHERE listed = 1 ORDER BY title, game_uid").compactMap { row in
            guard let uid = try? GameUID(validating: row[1].text ?? "") else { return nil }
            return PlanIndexEntry(title: row[0].text ?? "", gameUID: uid, planURL: row[2].text ?? "")
        }
    }

    public func planDocument(_ gameUID: GameUID) throws(StoreError) -> String? {
        try query("SELECT document FROM plans WHERE game_uid = ?", [.text(gameUID.rawValue)]).first?.first?.text
    }

    public func planUIDs() throws(StoreError) -> Set<GameUID> {
        Set(try query("SELECT game_uid FROM plans").compactMap { try? GameUID(validating: $0[0].text ?? "") })
    }

    /// Files of all plans' `actions/`; 0 in a catalog loaded before `0003_plans`.
    public func planFileCount() throws(StoreError) -> Int {
        Int(try query("SELECT count(*) FROM plan_files").first?.first?.integer ?? 0)
    }

    public func planCount() throws(StoreError) -> Int {
        Int(try query("SELECT count(*) FROM plans WHERE listed = 1").first?.first?.integer ?? 0)
    }

    public func upsertPlan(_ plan: StoredPlan, now: Int64) throws(StoreError) {
        try query(
            """
            INSERT INTO plans (game_uid, title, plan_url, listed, document, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (game_uid) DO UPDATE SET title = excluded.title, plan_url = excluded.plan_url, listed = excluded.listed,
              document = excluded.document, source = excluded.source, updated_at = excluded.updated_at
            """,
            [
                .text(plan.entry.gameUID.rawValue), .text(plan.entry.title), .text(plan.entry.planURL), .integer(plan.listed ? 1 : 0),
                .text(plan.documentText), .text(plan.source), .integer(now),
            ])
        try query("DELETE FROM plan_files WHERE game_uid = ?", [.text(plan.entry.gameUID.rawValue)])
        for file in plan.actions.files {
            try query(
                // An empty array binds as NULL; an empty file is an empty blob.
                "INSERT INTO plan_files (game_uid, path, executable, content) VALUES (?, ?, ?, coalesce(?, x''))",
                [.text(plan.entry.gameUID.rawValue), .text(file.path), .integer(file.executable ? 1 : 0), .blob(file.bytes)])
        }
    }

    /// The plan's `actions/` files as the catalog holds them, by path.
    public func planFiles(_ gameUID: GameUID) throws(StoreError) -> [PlanFile] {
        try query("SELECT path, executable, content FROM plan_files WHERE game_uid = ? ORDER BY path", [.text(gameUID.rawValue)]).map {
            PlanFile(path: $0[0].text ?? "", bytes: $0[2].blob ?? [], executable: $0[1].integer == 1)
        }
    }

    public func deletePlans(except keep: Set<GameUID>) throws(StoreError) {
        for uid in try planUIDs() where !keep.contains(uid) {
            try query("DELETE FROM plans WHERE game_uid = ?", [.text(uid.rawValue)])
        }
    }
}
