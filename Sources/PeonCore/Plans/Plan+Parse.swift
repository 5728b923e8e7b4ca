public import PeonJSON

extension Plan {
    /// Validates a `plan.json` document against the warplans schema (contract §3.2).
    ///
    /// Accepts both plain (`null`/string) and rich (object) `environment` values. Refuses volume
    /// sources outside the server directory: a plan must never be able to mount a host path.
    public init(document: JSON, expectedGameUID: GameUID) throws(PlanError) {
        var problems: [String] = []
        guard case .object = document else { throw PlanError(["plan.json must be a JSON object"]) }

        let metadata = document["metadata"]
        if metadata?.objectValue == nil { problems.append("metadata must be an object") }
        let uidText = metadata?["game_uid"]?.stringValue
        if uidText != expectedGameUID.rawValue {
            problems.append("metadata.game_uid must be '\(expectedGameUID)' (got '\(Identifier.quoted(uidText ?? "missing"))')")
        }
        for key in ["warcamp", "server_name", "version", "description", "mode", "hostname"] {
            if let v = metadata?[key], v.stringValue == nil, !v.isNull { problems.append("metadata.\(key) must be a string") }
        }
        let image = metadata?["image"]?.stringValue ?? ""
        if !Plan.isImageReference(image) { problems.append("metadata.image must be a Docker image reference") }

        let portGroups = Plan.parsePorts(document["ports"], problems: &problems)
        let settings = Plan.parseEnvironment(document["environment"], problems: &problems)
        let volumes = Plan.parseMounts(document["volumes"], field: "volumes", required: true, problems: &problems)
        let files = Plan.parseMounts(document["files"], field: "files", required: false, problems: &problems)
        Plan.checkDisjoint((volumes + files).map(\.source), problems: &problems)

        let runtime = Plan.parseRuntime(metadata?["runtime"], image: image, problems: &problems)
        let packages = Plan.parseNames(
            metadata?["packages"], field: "metadata.packages", maximum: 64, valid: Plan.isDebianPackage, problems: &problems)
        let capabilities = Plan.parseNames(
            metadata?["capabilities"], field: "metadata.capabilities", maximum: Plan.allowedCapabilities.count,
            valid: Plan.allowedCapabilities.contains, problems: &problems)
        var backup = BackupMethod.live
        if let value = metadata?["backup"], !value.isNull {
            if let command = value["save_command"]?.stringValue, value["stop"] == nil, (1...256).contains(command.unicodeScalars.count),
                !command.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            {
                backup = .saveCommand(command)
            } else if value["stop"] == .bool(true), value["save_command"] == nil {
                backup = .stop
            } else if value["stop"] != .bool(false) || value["save_command"] != nil {
                problems.append("metadata.backup must be {\"save_command\": \"<one line>\"} or {\"stop\": true}")
            }
        }
        if !packages.isEmpty, runtime == .image {
            problems.append("metadata.packages needs the steamcmd or debian runtime")
        }
        do {
            _ = try PlayerQuery.parse(metadata?["players"])
        } catch {
            if case .invalid(_, let reason) = error { problems.append(reason) }
        }
        var rcon: RconDeclaration?
        do {
            rcon = try RconDeclaration.parse(metadata?["rcon"], portGroups: portGroups, settings: settings)
        } catch {
            if case .invalid(_, let reason) = error { problems.append(reason) }
        }

        var stopGrace = Plan.defaultStopGraceSeconds
        var readyLine: String?
        if let stop = metadata?["stop"], !stop.isNull {
            let known = ["grace_seconds", "ready_line"]
            if stop.objectValue == nil || stop.objectValue!.contains(where: { !known.contains($0.0) }) {
                problems.append("metadata.stop must be an object with grace_seconds and/or ready_line")
            }
            if let grace = stop["grace_seconds"] {
                if let n = CheckedNumber.int(grace, in: Plan.stopGraceRange) {
                    stopGrace = n
                } else {
                    problems.append("metadata.stop.grace_seconds must be a whole number from 1 to 600")
                }
            }
            if let line = stop["ready_line"] {
                if let text = line.stringValue, (1...200).contains(text.unicodeScalars.count),
                    !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
                {
                    readyLine = text
                } else {
                    problems.append("metadata.stop.ready_line must be 1 to 200 characters of one line")
                }
            }
        }

        var ready = ReadyCheck(probe: .running)
        do {
            ready = try ReadyCheck.parse(metadata?["ready"], portGroups: portGroups, hasRcon: rcon != nil, readyLine: readyLine)
        } catch {
            if case .invalid(_, let reason) = error { problems.append(reason) }
        }

        var limits = ResourceLimits()
        do {
            limits = try ResourceLimits.parse(document["limits"])
        } catch {
            if case .invalid(_, let reason) = error { problems.append(reason) }
        }

        guard problems.isEmpty else { throw PlanError(problems) }
        self.gameUID = expectedGameUID
        self.description = metadata?["description"]?.stringValue ?? ""
        self.image = image
        self.portGroups = portGroups
        self.settings = settings
        self.volumes = volumes
        self.files = files
        self.limits = limits
        self.runtime = runtime
        self.packages = packages
        self.capabilities = capabilities
        self.backup = backup
        self.rcon = rcon
        self.stopGraceSeconds = stopGrace
        self.readyLine = readyLine
        self.ready = ready
        self.document = document
    }

    /// Capabilities a plan may add back (every game container drops all of them first). Not
    /// SYS_NICE: with it a game may take real-time scheduling and starve the node.
    public static let allowedCapabilities: Set<String> = ["NET_BIND_SERVICE"]

    /// PEON's warplans name `umlatt/steamcmd`; Peon runs those on its own steamcmd runtime.
    static func parseRuntime(_ value: JSON?, image: String, problems: inout [String]) -> PlanRuntime {
        guard let value, !value.isNull else {
            let repository = image.split(separator: ":", maxSplits: 1).first.map(String.init) ?? image
            return repository == "umlatt/steamcmd" ? .steamcmd : .image
        }
        guard let text = value.stringValue, let runtime = PlanRuntime(rawValue: text) else {
            problems.append("metadata.runtime must be one of steamcmd, debian, image")
            return .image
        }
        return runtime
    }

    static func parseNames(_ value: JSON?, field: String, maximum: Int, valid: (String) -> Bool, problems: inout [String]) -> [String] {
        guard let value, !value.isNull else { return [] }
        guard let items = value.arrayValue, items.count <= maximum else {
            problems.append("\(field) must be a list of at most \(maximum) names")
            return []
        }
        var names: [String] = []
        for item in items {
            guard let name = item.stringValue, valid(name) else {
                problems.append("\(field): '\(Identifier.quoted(item.stringValue ?? "not a string"))' is not allowed")
                continue
            }
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// Debian policy's package names: lower case letters, digits, `+`, `-`, `.`; two or more characters.
    static func isDebianPackage(_ s: String) -> Bool {
        guard (2...64).contains(s.utf8.count), let first = s.utf8.first,
            (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9"))
        else { return false }
        return s.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || "+-.".utf8.contains(b)
        }
    }

    static func isImageReference(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 255, let first = s.utf8.first, first != UInt8(ascii: "-") else { return false }
        return s.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || ".-_/:@".utf8.contains(b)
        }
    }

    static func isEnvironmentName(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.count <= 64, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else {
            return false
        }
        return s.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
        }
    }

    static func parsePorts(_ value: JSON?, problems: inout [String]) -> [[PortSpec]] {
        guard let value, !value.isNull else { return [] }
        guard let groups = value.arrayValue else {
            problems.append("ports must be a list of port groups")
            return []
        }
        var result: [[PortSpec]] = []
        for (g, group) in groups.enumerated() {
            guard let entries = group.arrayValue, !entries.isEmpty else {
                problems.append("ports[\(g)] must be a non-empty list")
                continue
            }
            var specs: [PortSpec] = []
            for entry in entries {
                guard let members = entry.objectValue, !members.isEmpty else {
                    problems.append("ports[\(g)] entries must be objects like {\"PORT\": [\"2456\", \"udp\"]}")
                    continue
                }
                for (name, spec) in members {
                    guard isEnvironmentName(name) else {
                        problems.append("ports[\(g)]: invalid port name '\(Identifier.quoted(name))'")
                        continue
                    }
                    let parts = spec.arrayValue ?? []
                    guard let port = CheckedNumber.port(parts.first) else {
                        problems.append("ports[\(g)].\(name): port must be 1-65535")
                        continue
                    }
                    let protoText = parts.count > 1 ? (parts[1].stringValue ?? "") : ""
                    let proto: PortSpec.Proto =
                        switch protoText.lowercased() {
                        case "tcp": .tcp
                        case "udp": .udp
                        default: .both  // "tcp/udp", "all" and anything else mean both, as in PEON
                        }
                    specs.append(PortSpec(name: name, port: port, proto: proto))
                }
            }
            result.append(specs)
        }
        return result
    }

    static func parseEnvironment(_ value: JSON?, problems: inout [String]) -> [Setting] {
        guard let value, !value.isNull else { return [] }
        guard let members = value.objectValue else {
            problems.append("environment must be an object")
            return []
        }
        var settings: [Setting] = []
        var seen = Set<String>()
        for (key, v) in members {
            guard isEnvironmentName(key) else {
                problems.append("environment: invalid key '\(Identifier.quoted(key))'")
                continue
            }
            guard seen.insert(key).inserted else {
                problems.append("environment: duplicate key \(key)")
                continue
            }
            switch v {
            case .null: settings.append(Setting(key: key, defaultValue: nil, required: true))
            case .string(let s): settings.append(Setting(key: key, defaultValue: s, required: s.isEmpty))
            case .number, .bool: settings.append(Setting(key: key, defaultValue: scalarText(v), required: false))
            case .object:
                let d = v["default"]
                let defaultText = d.flatMap(scalarText)
                if let d, !d.isNull, defaultText == nil {
                    problems.append("environment.\(key).default must be a string, number or boolean")
                    continue
                }
                if let r = v["required"], r.boolValue == nil {
                    problems.append("environment.\(key).required must be a boolean")
                    continue
                }
                let required = v["required"]?.boolValue ?? (defaultText ?? "").isEmpty
                var setting = Setting(key: key, defaultValue: defaultText, required: required)
                // Hints only, bounded; anything odd is left out rather than refused (PEON's UI reads more fields).
                setting.label = v["label"]?.stringValue.flatMap { $0.utf8.count <= 200 ? $0 : nil }
                setting.inputType = v["type"]?.stringValue.flatMap {
                    ["text", "password", "number", "boolean", "select", "textarea"].contains($0) ? $0 : nil
                }
                setting.options = Array((v["options"]?.arrayValue ?? []).compactMap(scalarText).filter { $0.utf8.count <= 200 }.prefix(100))
                settings.append(setting)
            case .array:
                problems.append("environment.\(key) must be null, a string, a number, a boolean or an object")
            }
        }
        return settings
    }

    /// The text form of a scalar setting value, as it will reach a container's environment.
    public static func scalarText(_ v: JSON) -> String? {
        switch v {
        case .string(let s): s
        case .number(let n): JSON.format(n)
        case .bool(let b): b ? "true" : "false"
        default: nil
        }
    }

    static func parseMounts(_ value: JSON?, field: String, required: Bool, problems: inout [String]) -> [(source: String, target: String)] {
        guard let value, !value.isNull else {
            if required { problems.append("\(field) must be an object") }
            return []
        }
        guard let members = value.objectValue else {
            problems.append("\(field) must be an object")
            return []
        }
        var mounts: [(source: String, target: String)] = []
        for (source, t) in members {
            guard let target = t.stringValue, isSafePath(target, absolute: true) else {
                problems.append("\(field): target of '\(Identifier.quoted(source))' must be an absolute path without '..'")
                continue
            }
            // Never `~!` itself: a container that can write the server folder can plant symlinks
            // that Docker follows as bind sources at the next start, or rewrite Peon's manifest.
            guard source.hasPrefix("~!/"), isSafePath(String(source.dropFirst(3)), absolute: false),
                source.dropFirst(3).split(separator: "/").first != "peon-server.json"
            else {
                problems.append(
                    "\(field): source '\(Identifier.quoted(source))' must be a named folder inside the server directory (~!/name), not ~! itself"
                )
                continue
            }
            mounts.append((source, target))
        }
        return mounts
    }

    /// Refuses two mounts where one contains the other: through the outer one a container could
    /// swap the inner source for a symlink that Docker follows at the next start.
    static func checkDisjoint(_ sources: [String], problems: inout [String]) {
        let paths = sources.map { $0.dropFirst(3).split(separator: "/") }
        for i in paths.indices {
            for j in paths.indices where j > i {
                let (a, b) = paths[i].count <= paths[j].count ? (paths[i], paths[j]) : (paths[j], paths[i])
                if b.starts(with: a) {
                    problems.append(
                        "mounts '\(Identifier.quoted(sources[i]))' and '\(Identifier.quoted(sources[j]))' overlap: one contains the other")
                }
            }
        }
    }

    static func isSafePath(_ path: String, absolute: Bool) -> Bool {
        guard !path.isEmpty, path.utf8.count <= 1024, path.hasPrefix("/") == absolute, !path.utf8.contains(0) else { return false }
        return !path.split(separator: "/").contains { $0 == ".." || $0 == "." }
    }
}
