import Crypto
import PeonArchive
import PeonCore
import PeonCurl
import PeonJSON
import PeonSystem

/// Where plans come from: a warplans folder (the local one, or an extracted archive) or an HTTP(S)
/// mirror of the same layout (`plans.json` index plus `<game_uid>/plan.json` and `actions/`).
enum PlanSource {
    static let indexLimit = 1 << 20
    static let planLimit = 256 << 10
    /// The compressed archive; what it unpacks to is bounded by `ArchiveLimits`.
    static let archiveLimit = 64 << 20

    /// What one source yielded: valid plans, and every file that was refused and why.
    struct Scan {
        var plans: [GameUID: PlanCandidate] = [:]
        var failures: [PlanFailure] = []
    }

    struct PlanCandidate {
        let plan: Plan
        let actions: PlanActions
        let entry: PlanIndexEntry
        let listed: Bool
        let source: String
    }

    /// Scans the warplans folder `dir`: the plans named by `plans.json` (listed), then any other
    /// `<game>/plan.json` (unlisted). `label` names the folder in reports and `source` columns
    /// (the URL for an archive, so no temporary path leaks); nil means `dir` itself, as `local`.
    static func scanFolder(_ dir: String, label: String? = nil) -> Scan {
        let shown = label ?? dir
        var scan = Scan()
        var entries: [PlanIndexEntry] = []
        let indexPath = dir + "/plans.json"
        if Files.kind(indexPath) != .missing {
            do {
                let (parsed, problems) = try PlanIndexEntry.parseIndex(JSON.parse(Files.read(indexPath, limit: indexLimit)))
                entries = parsed
                scan.failures += problems.map { PlanFailure(source: shown + "/plans.json", gameUID: nil, error: $0) }
            } catch {
                scan.failures.append(PlanFailure(source: shown + "/plans.json", gameUID: nil, error: error))
            }
        }
        let listed = Set(entries.map(\.gameUID))
        let unlisted = Files.list(dir).compactMap { name -> PlanIndexEntry? in
            guard let uid = try? GameUID(validating: name), !listed.contains(uid), Files.kind("\(dir)/\(name)/plan.json") == .file
            else { return nil }
            return PlanIndexEntry(title: name, gameUID: uid, planURL: "local://\(name)")
        }
        for entry in entries + unlisted {
            do {
                let (plan, actions) = try loadFolder("\(dir)/\(entry.gameUID)", uid: entry.gameUID)
                scan.plans[entry.gameUID] = PlanCandidate(
                    plan: plan, actions: actions, entry: entry, listed: listed.contains(entry.gameUID), source: label ?? "local")
            } catch {
                scan.failures.append(PlanFailure(source: "\(shown)/\(entry.gameUID)", gameUID: entry.gameUID, error: error))
            }
        }
        return scan
    }

    /// Loads and validates one plan folder: `plan.json` and its `actions/`, or nothing.
    static func loadFolder(_ dir: String, uid: GameUID) throws -> (Plan, PlanActions) {
        let plan = try Plan(document: JSON.parse(Files.read(dir + "/plan.json", limit: planLimit)), expectedGameUID: uid)
        return (plan, try PlanActions(files: readActions(dir + "/actions"), runtime: plan.runtime))
    }

    /// The regular files under `dir` (none when it is missing). A link, device, FIFO or socket,
    /// or more files than a plan may hold, refuses the folder; the walk stops there.
    static func readActions(_ dir: String) throws(PlanError) -> [PlanFile] {
        switch Files.kind(dir) {
        case .missing: return []
        case .directory: break
        default: throw PlanError(["actions must be a folder"])
        }
        var files: [PlanFile] = []
        func walk(_ relative: String, depth: Int) throws(PlanError) {
            for name in Files.list(relative.isEmpty ? dir : dir + "/" + relative) {
                let path = relative.isEmpty ? name : relative + "/" + name
                let full = dir + "/" + path
                switch Files.kind(full) {
                case .directory:
                    guard depth < PlanActions.maximumDepth else { throw PlanError(["actions/\(path): folders nested too deep"]) }
                    try walk(path, depth: depth + 1)
                case .file:
                    guard files.count < PlanActions.maximumFiles else {
                        throw PlanError(["actions/ holds more than \(PlanActions.maximumFiles) files"])
                    }
                    do {
                        let bytes = try Files.read(full, limit: PlanActions.maximumFileBytes)
                        files.append(PlanFile(path: path, bytes: bytes, executable: Files.isExecutable(full)))
                    } catch {
                        throw PlanError(["actions/\(Identifier.quoted(path)): \(error.reason)"])
                    }
                case .other:
                    throw PlanError(["actions/\(Identifier.quoted(path)): not a regular file (links, devices and FIFOs are refused)"])
                case .missing: continue
                }
            }
        }
        try walk("", depth: 1)
        return files
    }

    /// Downloads the index and every plan it lists, with `actions/server_start` and
    /// `actions/init_custom` beside each (absent when the mirror answers 404). A failed index
    /// throws: the caller keeps its catalog.
    static func fetchMirror(_ base: String, curl: CurlEasy) throws(CurlError) -> Scan {
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
                var files: [PlanFile] = []
                for name in [PlanActions.serverStart, PlanActions.initCustom] {
                    let fileURL = "\(trimmed)/\(entry.gameUID)/actions/\(name)"
                    do {
                        let body = try curl.get(fileURL, limits: TransferLimits(maximumBytes: PlanActions.maximumFileBytes))
                        files.append(PlanFile(path: name, bytes: body, executable: true))
                    } catch .status(404) {
                        continue
                    } catch {
                        throw PlanError(["\(fileURL): \(error)"])
                    }
                }
                let actions = try PlanActions(files: files, runtime: plan.runtime)
                scan.plans[entry.gameUID] = PlanCandidate(plan: plan, actions: actions, entry: entry, listed: true, source: url)
            } catch {
                scan.failures.append(PlanFailure(source: url, gameUID: entry.gameUID, error: error))
            }
        }
        return scan
    }

    /// Downloads an archive of a warplans tree and extracts it into a new folder under `workDir`;
    /// returns the tree's root (the folder holding `plans.json`: the archive's one top folder, as
    /// in a GitHub archive, or the extraction itself). The caller removes the returned `scratch`.
    static func fetchArchive(_ url: String, curl: CurlEasy, workDir: String, sha256 pin: String? = nil) throws -> (
        root: String, scratch: String
    ) {
        let bytes = try curl.get(url, limits: TransferLimits(totalTimeoutMilliseconds: 120_000, maximumBytes: archiveLimit))
        if let pin {
            let digest = APIKeys.hex(SHA256.hash(data: bytes))
            guard digest == pin else { throw PlanError(["the archive's SHA-256 is \(digest), not the \(pin) PEON_PLANS_SHA256 pins"]) }
        }
        let scratch = try Files.makeTemporaryDirectory(in: workDir, prefix: "plans-")
        do {
            try ArchiveExtractor.extract(bytes, into: scratch + "/tree")
            var root = scratch + "/tree"
            let top = Files.list(root)
            if Files.kind(root + "/plans.json") == .missing, top.count == 1, Files.kind(root + "/" + top[0]) == .directory {
                root += "/" + top[0]
            }
            guard Files.kind(root + "/plans.json") == .file else {
                throw PlanError(["the archive holds no plans.json at its top or in its one top folder"])
            }
            return (root, scratch)
        } catch {
            try? Files.removeTree(scratch)
            throw error
        }
    }
}
