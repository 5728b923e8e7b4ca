public import PeonCore
public import PeonCurl
public import PeonJSON
public import PeonStore
import PeonSystem

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
        /// The archive was downloaded but is unreadable or carries a member that is not allowed.
        case archiveRefused(url: String, reason: String)
        case nothingValid(failures: [PlanFailure])
    }

    /// Copies the bundled plans into an empty or missing plans folder.
    public static func seed(plansDir: String, bundled: String) throws {
        guard Files.list(plansDir).isEmpty, Files.kind(bundled) == .directory else { return }
        try Files.copyTree(from: bundled, to: plansDir)
    }

    /// Where the last accepted archive's tree is kept, beside the local plans folder.
    public static func remotePlansDir(dataDir: String) -> String { dataDir + "/plans-remote" }

    /// Rescans the local folder and, when configured, the remote source (which wins for a game
    /// both have), then applies the result in one write transaction. A plan that failed keeps its
    /// previous version; an unreachable source, a refused archive or a scan with nothing valid
    /// changes nothing. An archive is extracted under `dataDir` (default: the plans folder's
    /// parent) and validated whole; its tree replaces `plans-remote/` by a rename inside the same
    /// transaction.
    public static func refresh(
        store: Store, plansDir: String, plansURL: String?, plansSHA256: String? = nil, dataDir: String? = nil, curl: () -> CurlEasy,
        now: Int64
    ) throws -> Report {
        let dataDir = dataDir ?? Files.directory(of: plansDir)
        var scan = PlanSource.scanFolder(plansDir)
        var staged: (root: String, scratch: String)?
        defer { if let staged { try? Files.removeTree(staged.scratch) } }
        if let plansURL {
            let remote: PlanSource.Scan
            if Plan.isArchiveURL(plansURL) {
                let workDir = dataDir + "/tmp"
                let fetched: (root: String, scratch: String)
                do {
                    fetched = try PlanSource.fetchArchive(plansURL, curl: curl(), workDir: workDir, sha256: plansSHA256)
                } catch let error as CurlError {
                    throw RefreshError.indexUnavailable(url: plansURL, error: error)
                } catch {
                    throw RefreshError.archiveRefused(
                        url: plansURL, reason: PlanFailure(source: plansURL, gameUID: nil, error: error).error)
                }
                staged = fetched
                remote = PlanSource.scanFolder(fetched.root, label: plansURL)
            } else {
                do {
                    remote = try PlanSource.fetchMirror(plansURL, curl: curl())
                } catch {
                    throw RefreshError.indexUnavailable(url: plansURL, error: error)
                }
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
                    entry: candidate.entry, listed: candidate.listed, documentText: candidate.plan.document.text, source: candidate.source,
                    actions: candidate.actions)
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
            // Last step of the transaction: a failed rename rolls the rows back too.
            if let staged { try swapRemoteTree(staged, dataDir: dataDir) }
        }
        return report
    }

    /// Moves the previous tree into the scratch folder (removed with it) and the new one in.
    static func swapRemoteTree(_ staged: (root: String, scratch: String), dataDir: String) throws {
        let target = remotePlansDir(dataDir: dataDir)
        let old = staged.scratch + "/previous"
        if Files.kind(target) != .missing { try Files.rename(target, to: old) }
        do {
            try Files.rename(staged.root, to: target)
        } catch {
            if Files.kind(old) != .missing { try? Files.rename(old, to: target) }
            throw error
        }
    }
}
