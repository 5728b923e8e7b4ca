public import PeonCore
import PeonDocker
import PeonJSON
public import PeonPlatform
import PeonSystem

/// Server files on Swarm: Peon's node agent (`SwarmAgent`) on the server's node does the work, in
/// the node's data folder (bind-mounted at `/peon`).
///
/// Inputs travel base64-encoded and become shell variables on the node, never shell text, so a
/// file name or content cannot become shell. Paths are Peon's own (validated `ServerUID`s, plan
/// sources checked at plan load); every step refuses a symlink, as `LocalServerFiles` does.
extension SwarmPlatform {
    func serverPath(_ uid: ServerUID) -> String { "/peon/servers/" + uid.relativeDirectory }

    func actionsFields(_ actions: [PlanFile]) -> [(String, String)] {
        let safe = actions.filter { PlanActions.isSafePath($0.path) }
        var fields: [(String, String)] = [("NA", "\(safe.count)")]
        for (i, file) in safe.enumerated() {
            fields.append(("A\(i)", file.path))
            fields.append(("B\(i)", Base64.encode(file.bytes)))
        }
        return fields
    }

    public func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        let node = try holder(uid)
        let volumes = plan.volumes.map { String($0.source.dropFirst(3)) }.filter { !$0.isEmpty }
        let files = plan.files.map { String($0.source.dropFirst(3)) }
        let lines = try onNode(
            node, "prepare",
            fields: [
                ("D", serverPath(uid)), ("RE", reinstallActions ? "1" : "0"), ("VOLS", volumes.joined(separator: " ")),
                ("FILES", files.joined(separator: " ")),
            ] + actionsFields(actions))
        let existing = Set(lines.filter { $0.hasPrefix("EXISTS ") }.map { "~!/" + $0.dropFirst(7) })
        return PreparedFiles(directory: dataRoot + "/servers/" + uid.relativeDirectory, existingFiles: existing)
    }

    /// The bind sources were checked by `prepareFiles` moments before, on the node, by the same
    /// rules, in the same job.
    public func checkFiles(_ uid: ServerUID, plan: Plan) throws(PlatformError) {}

    public func updateFiles(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        let node = try holder(uid)
        _ = try onNode(
            node, "update",
            fields: [
                ("D", serverPath(uid)), ("REDOWNLOAD", mode.redownloadsGame ? "1" : "0"), ("VALIDATE", mode.validatesGame ? "1" : "0"),
                ("WIPE", mode.wipesGameFiles ? "1" : "0"),
            ] + actionsFields(actions))
    }

    /// Written only when it differs from the file on the node.
    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) {
        let node = try holder(uid)
        _ = try onNode(node, "manifest", fields: [("D", serverPath(uid)), ("M", Base64.encode(bytes))])
    }

    /// Every usable node's server manifests (a node that is down keeps its servers to itself).
    public func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])] {
        var found: [(ServerUID, [UInt8])] = []
        for node in try nameNodes(try nodes()) where node.usable {
            for line in try onNode(node, "manifests") where line.hasPrefix("M ") {
                let parts = line.split(separator: " ", maxSplits: 2)
                guard parts.count == 3, let uid = try? ServerUID(validating: String(parts[1].map { $0 == "/" ? "." : $0 })),
                    let bytes = Base64.decode(parts[2])
                else { continue }
                found.append((uid, bytes))
            }
        }
        return found
    }

    public func readConfig(_ uid: ServerUID) throws(PlatformError) -> [(String, String)] {
        let node = try holder(uid)
        return try onNode(node, "config", fields: [("D", serverPath(uid))]).compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "C", ServerConfig.isVisible(String(parts[1])), let bytes = Base64.decode(parts[2]),
                let text = String(validating: bytes, as: UTF8.self)
            else { return nil }
            return (String(parts[1]), String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed()))
        }.sorted { $0.0 < $1.0 }
    }

    public func removeFiles(_ uid: ServerUID) throws(PlatformError) {
        let node = try holder(uid)
        _ = try onNode(node, "remove", fields: [("D", serverPath(uid))], seconds: 600)
        try label(node.id, [(Self.holdsLabel(uid), nil)])
    }

    /// The node's own listeners (TCP in LISTEN, bound UDP), read by its agent from the node's /proc/net.
    func listeners(on node: Node) throws(PlatformError) -> Set<PortKey> {
        var taken = Set<PortKey>()
        var table = ""
        var section: PortKey.Transport?
        func flush() {
            guard let section else { return }
            for port in HostPorts.parse(table, state: section == .tcp ? "0A" : "07") { taken.insert(PortKey(port, section)) }
        }
        // `head` of /proc/net/{tcp,tcp6,udp,udp6}: each table after a `==> /proc/net/<name> <==` line.
        for line in try onNode(node, "ports") {
            if line.hasPrefix("==> ") {
                flush()
                section = line.hasPrefix("==> /proc/net/tcp") ? .tcp : .udp
                table = ""
            } else {
                table += line + "\n"
            }
        }
        flush()
        return taken
    }
}
