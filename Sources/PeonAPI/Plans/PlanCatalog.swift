public import PeonCore
public import PeonCurl
public import PeonJSON
public import PeonStore
import PeonSystem

/// A plan file or index entry that was refused, and why.
public struct PlanFailure: Sendable {
    public let source: String
    public let gameUID: GameUID?
    public let error: String

    public var json: JSON {
        ["source": .string(source), "game_uid": gameUID.map { .string($0.rawValue) } ?? .null, "error": .string(error)]
    }
}

/// Keeps the plan catalog in SQLite in step with the plan sources.
public enum PlanCatalog {
    /// The outcome of a refresh, as `PUT /plans` reports it.
    public struct Report {
        public var added: [PlanIndexEntry] = []
        public var updated: [GameUID] = []
        public var removed: [GameUID] = []
        public var failures: [PlanFailure] = []

        /// `{"new_recipies": {...}}` (PEON's spelling) plus what else happened.
        public var json: JSON {
            .object([
                ("new_recipies", .object(added.map { ($0.gameUID.rawValue, $0.json) })),
                ("updated", .array(updated.map { .string($0.rawValue) })),
                ("removed", .array(removed.map { .string($0.rawValue) })),
                ("failed", .array(failures.map(\.json))),
            ])
        }
    }

    /// Why a refresh changed nothing.
    public enum RefreshError: Error {
        case indexUnavailable(url: String, error: CurlError)
        case nothingValid(failures: [PlanFailure])
    }

    /// Copies the bundled plans into an empty or missing plans folder.
    public static func seed(plansDir: String, bundled: String) throws {
        guard Files.list(plansDir).isEmpty, Files.kind(bundled) == .directory else { return }
        try Files.copyTree(from: bundled, to: plansDir)
    }

    /// Rescans the local folder and, when configured, the remote mirror (which wins for a game both
    /// have), then applies the result in one write transaction. A plan that failed keeps its
    /// previous version; an unreachable index or a scan with nothing valid changes nothing.
    public static func refresh(store: Store, plansDir: String, plansURL: String?, curl: () -> CurlEasy, now: Int64) throws -> Report {
        var scan = PlanSource.scanLocal(plansDir)
        if let plansURL {
            let remote: PlanSource.Scan
            do {
                remote = try PlanSource.fetchRemote(plansURL, curl: curl())
            } catch {
                throw RefreshError.indexUnavailable(url: plansURL, error: error)
            }
            scan.plans.merge(remote.plans) { _, new in new }
            scan.failures += remote.failures
        }
        var report = Report()
        report.failures = scan.failures
        let failed = Set(scan.failures.compactMap(\.gameUID)).subtracting(scan.plans.keys)
        try store.write { tx in
            let previous = try tx.planUIDs()
            if scan.plans.isEmpty, !previous.isEmpty {
                throw RefreshError.nothingValid(failures: scan.failures)
            }
            for (uid, candidate) in scan.plans.sorted(by: { $0.key < $1.key }) {
                let stored = StoredPlan(
                    entry: candidate.entry, listed: candidate.listed, documentText: candidate.plan.document.text, source: candidate.source)
                try tx.upsertPlan(stored, now: now)
                if !previous.contains(uid) {
                    if candidate.listed { report.added.append(candidate.entry) }
                } else {
                    report.updated.append(uid)
                }
            }
            let keep = Set(scan.plans.keys).union(failed)
            report.removed = previous.subtracting(keep).sorted()
            try tx.deletePlans(except: keep)
        }
        return report
    }
}
