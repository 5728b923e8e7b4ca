import PeonCore
import PeonCurl
import PeonJSON
import PeonSystem

/// Where plans come from: the local warplans folder or an HTTP(S) mirror of the same layout
/// (`plans.json` index plus `<game_uid>/plan.json`).
enum PlanSource {
    static let indexLimit = 1 << 20
    static let planLimit = 256 << 10

    /// What one source yielded: valid plans, and every file that was refused and why.
    struct Scan {
        var plans: [GameUID: PlanCandidate] = [:]
        var failures: [PlanFailure] = []
    }

    struct PlanCandidate {
        let plan: Plan
        let entry: PlanIndexEntry
        let listed: Bool
        let source: String
    }

    /// Scans `dir`: the plans named by `plans.json` (listed), then any other `<game>/plan.json` (unlisted).
    static func scanLocal(_ dir: String) -> Scan {
        var scan = Scan()
        var entries: [PlanIndexEntry] = []
        let indexPath = dir + "/plans.json"
        if Files.kind(indexPath) != .missing {
            do {
                let (parsed, problems) = try PlanIndexEntry.parseIndex(JSON.parse(Files.read(indexPath, limit: indexLimit)))
                entries = parsed
                scan.failures += problems.map { PlanFailure(source: indexPath, gameUID: nil, error: $0) }
            } catch {
                scan.failures.append(PlanFailure(source: indexPath, gameUID: nil, error: "\(error)"))
            }
        }
        let listed = Set(entries.map(\.gameUID))
        let unlisted = Files.list(dir).compactMap { name -> PlanIndexEntry? in
            guard let uid = try? GameUID(validating: name), !listed.contains(uid), Files.kind("\(dir)/\(name)/plan.json") == .file
            else { return nil }
            return PlanIndexEntry(title: name, gameUID: uid, planURL: "local://\(name)")
        }
        for entry in entries + unlisted {
            let path = "\(dir)/\(entry.gameUID)/plan.json"
            do {
                let plan = try Plan(document: JSON.parse(Files.read(path, limit: planLimit)), expectedGameUID: entry.gameUID)
                scan.plans[entry.gameUID] = PlanCandidate(plan: plan, entry: entry, listed: listed.contains(entry.gameUID), source: "local")
            } catch {
                scan.failures.append(PlanFailure(source: path, gameUID: entry.gameUID, error: "\(error)"))
            }
        }
        return scan
    }

    /// Downloads the index and every plan it lists. A failed index throws: the caller keeps its catalog.
    static func fetchRemote(_ base: String, curl: CurlEasy) throws(CurlError) -> Scan {
        let root = base.hasSuffix(".json") ? String(base[..<(base.lastIndex(of: "/") ?? base.endIndex)]) : base
        let trimmed = root.hasSuffix("/") ? String(root.dropLast()) : root
        let indexURL = base.hasSuffix(".json") ? base : trimmed + "/plans.json"
        let indexBytes = try curl.get(indexURL, limits: TransferLimits(maximumBytes: indexLimit))
        var scan = Scan()
        let entries: [PlanIndexEntry]
        do {
            let (parsed, problems) = try PlanIndexEntry.parseIndex(JSON.parse(indexBytes))
            entries = parsed
            scan.failures += problems.map { PlanFailure(source: indexURL, gameUID: nil, error: $0) }
        } catch {
            throw .transport(code: 0, message: "\(indexURL): \(error)")
        }
        for entry in entries {
            let url = "\(trimmed)/\(entry.gameUID)/plan.json"
            do {
                let bytes = try curl.get(url, limits: TransferLimits(maximumBytes: planLimit))
                let plan = try Plan(document: JSON.parse(bytes), expectedGameUID: entry.gameUID)
                scan.plans[entry.gameUID] = PlanCandidate(plan: plan, entry: entry, listed: true, source: url)
            } catch {
                scan.failures.append(PlanFailure(source: url, gameUID: entry.gameUID, error: "\(error)"))
            }
        }
        return scan
    }
}
