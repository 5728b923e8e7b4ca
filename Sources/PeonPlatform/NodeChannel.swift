public import PeonCore
public import PeonJSON

/// Where a server's node-local work runs: this process (the scheduler shares the games' host) or
/// Peon's node agent on the server's node. Both run the same `NodeOperation`s with the same code;
/// only the way there differs.
public protocol NodeChannel: AnyObject {
    /// Runs `operation` on the node and answers its JSON result. An operation that `readsStream`
    /// reads `input` (a readable descriptor) to its end; one that `writesStream` writes its stream
    /// to `output` (a writable descriptor). The caller keeps and closes both.
    func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON
}

/// Typed calls: each operation's answer read back into Peon's types (a malformed answer is `refused`).
extension NodeChannel {
    func run(_ operation: NodeOperation) throws(PlatformError) -> JSON { try perform(operation, input: nil, output: nil) }

    public func prepare(_ uid: ServerUID, _ sources: BindSources, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        let answer = try run(.prepare(uid, sources, actions: actions, reinstallActions: reinstallActions))
        guard let directory = answer["directory"]?.stringValue else { throw .refused("the node answered no server folder") }
        return PreparedFiles(
            directory: directory, existingFiles: Set((answer["existing"]?.arrayValue ?? []).compactMap(\.stringValue).map { "~!/" + $0 }))
    }

    public func check(_ uid: ServerUID, _ sources: BindSources) throws(PlatformError) { _ = try run(.check(uid, sources)) }

    public func update(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        _ = try run(.update(uid, mode, actions: actions))
    }

    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) { _ = try run(.writeManifest(uid, bytes)) }

    public func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])] {
        (try run(.manifests)["manifests"]?.arrayValue ?? []).compactMap { item in
            guard let uid = item["uid"]?.stringValue.flatMap({ try? ServerUID(validating: $0) }),
                let bytes = item["bytes"]?.stringValue.flatMap({ Base64.decode(Substring($0)) })
            else { return nil }
            return (uid, bytes)
        }
    }

    /// The visible config files as they are now, each with whether it looks complete.
    public func configFiles(_ uid: ServerUID) throws(PlatformError) -> [ConfigFile] {
        (try run(.config(uid))["files"]?.arrayValue ?? []).compactMap { item in
            guard let name = item["name"]?.stringValue, ServerConfig.isVisible(name), let text = item["text"]?.stringValue else {
                return nil
            }
            return ConfigFile(name: name, text: text, settled: item["settled"]?.boolValue ?? true)
        }
    }

    public func kill(container: String) throws(PlatformError) { _ = try run(.kill(container: container)) }

    public func config(_ uid: ServerUID) throws(PlatformError) -> [(String, String)] { try configFiles(uid).map { ($0.name, $0.text) } }

    /// Removes the server's folder on the node; whether there was one (nil: an agent too old to say).
    @discardableResult
    public func remove(_ uid: ServerUID) throws(PlatformError) -> Bool? { try run(.remove(uid))["removed"]?.boolValue }

    public func listeners() throws(PlatformError) -> Set<PortKey> {
        let answer = try run(.listeners)
        var keys = Set<PortKey>()
        for (name, transport) in [("tcp", PortKey.Transport.tcp), ("udp", .udp)] {
            for port in answer[name]?.arrayValue ?? [] {
                if let p = CheckedNumber.int(port, in: 1...65535) { keys.insert(PortKey(p, transport)) }
            }
        }
        return keys
    }

    /// Counters of a container on the node, as its engine counts them.
    public func stats(container: String) throws(PlatformError) -> StatsSample {
        let a = try run(.stats(container: container))
        func n(_ key: String) -> Int64 { CheckedNumber.integer(a[key], in: 0...Int64.max) ?? 0 }
        guard a["memory"] != nil, a["cpu_total"] != nil else { throw .refused("the node has no counters for container \(container)") }
        return StatsSample(
            cpuTotal: UInt64(n("cpu_total")), systemTotal: UInt64(n("system_total")), onlineCPUs: Int(max(1, n("cpus"))),
            memory: n("memory"), memoryLimit: n("memory_limit"), networkRx: n("network_rx"), networkTx: n("network_tx"),
            startedAt: n("started_at"))
    }

    /// Writes an archive of the server's backup folders to `output`.
    public func archive(_ uid: ServerUID, format: String, to output: Int32) throws(PlatformError) {
        _ = try perform(.archive(uid, format: format), input: nil, output: output)
    }

    /// Stages a restore from the archive read from `input`.
    public func restoreStage(_ uid: ServerUID, backup: Int64, sha256: String, from input: Int32) throws(PlatformError) {
        _ = try perform(.restoreStage(uid, backup: backup, sha256: sha256), input: input, output: nil)
    }

    public func restoreSwap(_ uid: ServerUID, backup: Int64) throws(PlatformError) { _ = try run(.restoreSwap(uid, backup: backup)) }

    public func restoreDiscard(_ uid: ServerUID, backup: Int64) throws(PlatformError) { _ = try run(.restoreDiscard(uid, backup: backup)) }

    public func tail(_ uid: ServerUID, path: String, limit: Int) throws(PlatformError) -> String? {
        try run(.tail(uid, path: path, limit: limit))["text"]?.stringValue
    }

    public func consoleLine(container: String, _ line: String) throws(PlatformError) {
        _ = try run(.consoleLine(container: container, line: line))
    }

    /// The game's answer to one RCON command; the game's RCON failures throw `RconError`, the
    /// node's failures `PlatformError`.
    public func rcon(container: String, port: Int, password: String, command: String) throws -> RconResponse {
        let a = try run(.rcon(container: container, port: port, password: password, command: command))
        if let code = a["rcon_error"]?.stringValue {
            let detail = a["detail"]?.stringValue ?? ""
            switch code {
            case "rcon.settings": throw RconError.settings(detail)
            case "rcon.auth_failed": throw RconError.authFailed
            case "rcon.protocol": throw RconError.protocolViolation(detail)
            case "rcon.timeout": throw RconError.timeout
            default: throw RconError.unreachable(detail)
            }
        }
        return RconResponse(text: a["text"]?.stringValue ?? "", truncated: a["truncated"]?.boolValue ?? false)
    }

    // MARK: Files (the request's refusals throw `ServerFileError`, the node's failures `PlatformError`)

    /// A folder's entries (nil: the server's areas) and whether there were more than `limit`.
    public func listFiles(_ uid: ServerUID, path: ServerFilePath?, limit: Int) throws -> (entries: [ServerFileEntry], truncated: Bool) {
        let a = try Self.refusal(try run(.listFiles(uid, path: path, limit: limit)))
        let entries = (a["entries"]?.arrayValue ?? []).compactMap(ServerFileEntry.init(json:))
        return (Array(entries.prefix(limit)), a["truncated"]?.boolValue ?? false)
    }

    public func readFile(_ uid: ServerUID, path: ServerFilePath, limit: Int) throws -> [UInt8] {
        let a = try Self.refusal(try run(.readFile(uid, path: path, limit: limit)))
        guard let bytes = a["bytes"]?.stringValue.flatMap({ Base64.decode(Substring($0)) }), bytes.count <= limit else {
            throw PlatformError.refused("the node answered no file")
        }
        return bytes
    }

    /// Answers the size and the SHA-256 the node wrote.
    public func writeFile(_ uid: ServerUID, path: ServerFilePath, bytes: [UInt8]) throws -> (size: Int, sha256: String) {
        let a = try Self.refusal(try run(.writeFile(uid, path: path, bytes: bytes)))
        guard let size = CheckedNumber.int(a["size"], in: 0...Int.max), let sha = a["sha256"]?.stringValue else {
            throw PlatformError.refused("the node did not say what it wrote")
        }
        return (size, sha)
    }

    public func deleteFile(_ uid: ServerUID, path: ServerFilePath) throws {
        _ = try Self.refusal(try run(.deleteFile(uid, path: path)))
    }

    static func refusal(_ answer: JSON) throws(ServerFileError) -> JSON {
        if let code = answer["file_error"]?.stringValue {
            throw ServerFileError(code: code, detail: answer["detail"]?.stringValue ?? "")
                ?? .refused(answer["detail"]?.stringValue ?? "the node refused the file operation")
        }
        return answer
    }

    /// Whether the game in `container` answers `kind` on its `port` now.
    public func probe(_ kind: NetworkProbe, container: String, port: Int) throws(PlatformError) -> Bool {
        try run(.probe(kind, container: container, port: port))["ready"]?.boolValue == true
    }

    public func a2sInfo(port: Int) throws(PlatformError) -> PlayerCount? {
        let a = try run(.a2sInfo(port: port))
        guard let players = CheckedNumber.int(a["players"], in: 0...1_000_000) else { return nil }
        return PlayerCount(players: players, max: CheckedNumber.int(a["max"], in: 0...1_000_000))
    }

    /// Installs Peon's egress rules on the node; answers the address families they cover
    /// (`ipv4`, and `ipv6` where the node has it).
    @discardableResult
    public func egress(allow: [CIDR], defaultBridge: Bool) throws(PlatformError) -> [String] {
        (try run(.egress(allow: allow, defaultBridge: defaultBridge))["families"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// Removes Peon's egress rules from the node.
    public func removeEgress() throws(PlatformError) { _ = try run(.egressRemove) }

    /// The node's rules as `egress` means them: installed (`restricted`) or removed (`open`).
    public func apply(_ egress: GameEgress, defaultBridge: Bool) throws(PlatformError) {
        switch egress {
        case .restricted(let allow): try self.egress(allow: allow, defaultBridge: defaultBridge)
        case .open: try removeEgress()
        }
    }
}
