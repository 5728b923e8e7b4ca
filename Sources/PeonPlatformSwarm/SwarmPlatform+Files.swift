public import PeonCore
import PeonDocker
import PeonJSON
public import PeonPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// Server files on Swarm: a one-shot helper service pinned to the server's node, with the node's
/// data folder bind-mounted at `/peon`, runs a short shell script and reports through its log.
///
/// Inputs travel as environment variables (base64) and are never spliced into the script, so a
/// file name or content cannot become shell. Paths are Peon's own (validated `ServerUID`s, plan
/// sources checked at plan load); every step refuses a symlink, as `LocalServerFiles` does.
extension SwarmPlatform {
    /// Runs `script` on `node` as root with `/peon` the node's data folder; its output lines.
    func runOnNode(_ node: String, script: String, environment: [(String, String)] = []) throws(PlatformError) -> [String] {
        let name = "peon-node-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let labels = JSON.object([("peon.helper", "true")] + extraLabels.map { ($0.0, JSON.string($0.1)) })
        let spec: JSON = [
            "Name": .string(name),
            "Labels": labels,
            "TaskTemplate": [
                "ContainerSpec": [
                    "Image": .string(helperImage), "Command": ["/bin/sh", "-c", .string("set -e\n" + script)], "User": "0:0",
                    "Env": .array(environment.map { JSON.string("\($0.0)=\($0.1)") }),
                    "Mounts": [["Type": "bind", "Source": .string(dataRoot), "Target": "/peon"]], "Labels": labels,
                ],
                "RestartPolicy": ["Condition": "none"],
                "Placement": ["Constraints": [.string("node.labels.\(Self.nodeLabel)==\(node)")]],
                "LogDriver": ["Name": "json-file"],
            ],
            "Mode": ["Replicated": ["Replicas": 1]],
        ]
        let id = try engine { () throws(DockerError) in try docker.createService(spec) }
        defer { try? docker.removeService(id) }
        var waited = 0.0
        var state = ObservedState.created
        while waited < 60 {
            state = try latestTask(ServerRef(id))?.state ?? .created
            if state.isStopped || state == .dead || state == .nodeDown { break }
            usleep(50_000)
            waited += 0.05
        }
        guard case .exited(let code, _) = state else { throw .unavailable("node \(node) did not run Peon's file task (\(state.name))") }
        var lines: [String] = []
        // The log reaches the manager a moment after the task ends: wait for the end marker.
        for _ in 0..<50 {
            let frames = try engine { () throws(DockerError) in try docker.serviceLogs(id) }
            lines = frames.map(\.text).joined().split(separator: "\n").map(String.init)
            if lines.contains("PEON-END") { break }
            usleep(100_000)
        }
        if code != 0 {
            let reason = lines.first { $0.hasPrefix("ERR ") }.map { String($0.dropFirst(4)) } ?? "exit code \(code)"
            throw .refused(reason)
        }
        return lines.filter { $0 != "PEON-END" }
    }

    func serverPath(_ uid: ServerUID) -> String { "/peon/servers/" + uid.relativeDirectory }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i]
            let b1 = i + 1 < bytes.count ? bytes[i + 1] : 0
            let b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unbase64(_ text: Substring) -> [UInt8]? {
        var map = [UInt8: UInt8]()
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { map[c] = UInt8(i) }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 where c != UInt8(ascii: "=") {
            guard let v = map[c] else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }

    /// Shell that refuses a symlink at any level from `/peon` down to `$1`.
    static let noLinks = #"""
        nolinks() { p=/peon; rest=${1#/peon/}; IFS=/; for part in $rest; do p=$p/$part; if [ -L "$p" ]; then echo "ERR unsafe mount source: $p is a symlink"; echo PEON-END; exit 3; fi; done; unset IFS; }

        """#

    /// Installs actions given as `A<n>` (path) and `B<n>` (base64 bytes) into `$D/actions`.
    static let installActions = #"""
        mkdir -p "$D/actions"; nolinks "$D/actions"
        i=0; while [ "$i" -lt "$NA" ]; do eval "p=\$A$i; b=\$B$i"; nolinks "$D/actions/$p"; mkdir -p "$(dirname "$D/actions/$p")"
          echo "$b" | base64 -d > "$D/actions/$p.peon-tmp"; chmod 755 "$D/actions/$p.peon-tmp"; mv -f "$D/actions/$p.peon-tmp" "$D/actions/$p"; i=$((i+1)); done
        chown -R 1000:1000 "$D/actions"

        """#

    func actionsEnvironment(_ actions: [PlanFile]) -> [(String, String)] {
        let safe = actions.filter { PlanActions.isSafePath($0.path) }
        var env: [(String, String)] = [("NA", "\(safe.count)")]
        for (i, file) in safe.enumerated() {
            env.append(("A\(i)", file.path))
            env.append(("B\(i)", Self.base64(file.bytes)))
        }
        return env
    }

    public func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        let node = try holder(uid)
        let volumes = plan.volumes.map { String($0.source.dropFirst(3)) }.filter { !$0.isEmpty }
        let files = plan.files.map { String($0.source.dropFirst(3)) }
        let script =
            Self.noLinks + #"""
                mkdir -p /peon/servers; nolinks "$D"
                if [ ! -d "$D" ]; then mkdir -p "$D"; chown 1000:1000 "$D"; chmod 755 "$D"; fi
                if [ ! -d "$D/actions" ] || [ "$RE" = 1 ]; then

                """# + Self.installActions + #"""
                fi
                for v in $VOLS; do nolinks "$D/$v"; if [ ! -e "$D/$v" ]; then mkdir -p "$D/$v"; chown 1000:1000 "$D/$v"; fi; done
                for f in $FILES; do nolinks "$D/$f"; if [ -f "$D/$f" ]; then echo "EXISTS $f"; fi; done
                echo PEON-END
                """#
        let lines = try runOnNode(
            node.name, script: script,
            environment: [
                ("D", serverPath(uid)), ("RE", reinstallActions ? "1" : "0"), ("VOLS", volumes.joined(separator: " ")),
                ("FILES", files.joined(separator: " ")),
            ] + actionsEnvironment(actions))
        let existing = Set(lines.filter { $0.hasPrefix("EXISTS ") }.map { "~!/" + $0.dropFirst(7) })
        return PreparedFiles(directory: dataRoot + "/servers/" + uid.relativeDirectory, existingFiles: existing)
    }

    /// The bind sources were checked by `prepareFiles` moments before, on the node, by the same
    /// rules; a second helper task per start would double its cost for a window of milliseconds.
    public func checkFiles(_ uid: ServerUID, plan: Plan) throws(PlatformError) {}

    public func updateFiles(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        let node = try holder(uid)
        let script =
            Self.noLinks + Self.installActions + #"""
                if [ "$REDOWNLOAD" = 1 ]; then rm -f "$D/actions/.update"; fi
                if [ "$VALIDATE" = 1 ]; then : > "$D/actions/.validate"; chown 1000:1000 "$D/actions/.validate"; fi
                if [ "$WIPE" = 1 ] && [ -d "$D/data" ]; then nolinks "$D/data"; find "$D/data" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
                echo PEON-END
                """#
        _ = try runOnNode(
            node.name, script: script,
            environment: [
                ("D", serverPath(uid)), ("REDOWNLOAD", mode.redownloadsGame ? "1" : "0"), ("VALIDATE", mode.validatesGame ? "1" : "0"),
                ("WIPE", mode.wipesGameFiles ? "1" : "0"),
            ] + actionsEnvironment(actions))
    }

    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) {
        let node = try holder(uid)
        let script =
            Self.noLinks + #"""
                nolinks "$D/peon-server.json"; mkdir -p "$D"
                echo "$M" | base64 -d > "$D/peon-server.json.peon-tmp"; chmod 600 "$D/peon-server.json.peon-tmp"; mv -f "$D/peon-server.json.peon-tmp" "$D/peon-server.json"
                echo PEON-END
                """#
        _ = try runOnNode(node.name, script: script, environment: [("D", serverPath(uid)), ("M", Self.base64(bytes))])
    }

    /// Every usable node's server manifests (a node that is down keeps its servers to itself).
    public func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])] {
        var found: [(ServerUID, [UInt8])] = []
        let script = #"""
            for f in /peon/servers/*/*/peon-server.json; do
              if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(wc -c < "$f")" -le 1048576 ]; then rel=${f#/peon/servers/}; echo "M ${rel%/peon-server.json} $(base64 -w 0 "$f")"; fi
            done
            echo PEON-END
            """#
        for node in try nameNodes(try nodes()) where node.usable {
            for line in try runOnNode(node.name, script: script) where line.hasPrefix("M ") {
                let parts = line.split(separator: " ", maxSplits: 2)
                guard parts.count == 3, let uid = try? ServerUID(validating: String(parts[1].map { $0 == "/" ? "." : $0 })),
                    let bytes = Self.unbase64(parts[2])
                else { continue }
                found.append((uid, bytes))
            }
        }
        return found
    }

    public func readConfig(_ uid: ServerUID) throws(PlatformError) -> [(String, String)] {
        let node = try holder(uid)
        let script = #"""
            if [ -d "$D/config" ] && [ ! -L "$D/config" ]; then
              for f in "$D"/config/*; do
                if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(wc -c < "$f")" -le 4096 ]; then echo "C $(basename "$f") $(base64 -w 0 "$f")"; fi
              done
            fi
            echo PEON-END
            """#
        return try runOnNode(node.name, script: script, environment: [("D", serverPath(uid))]).compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "C", ServerConfig.isVisible(String(parts[1])), let bytes = Self.unbase64(parts[2]),
                let text = String(validating: bytes, as: UTF8.self)
            else { return nil }
            return (String(parts[1]), String(text.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed()))
        }.sorted { $0.0 < $1.0 }
    }

    public func removeFiles(_ uid: ServerUID) throws(PlatformError) {
        let node = try holder(uid)
        let script =
            Self.noLinks + #"""
                nolinks "$D"; rm -rf "$D"
                echo PEON-END
                """#
        _ = try runOnNode(node.name, script: script, environment: [("D", serverPath(uid))])
        try label(node.id, [(Self.holdsLabel(uid), nil)])
    }
}
