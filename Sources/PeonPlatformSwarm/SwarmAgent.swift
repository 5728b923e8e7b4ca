import Crypto
import PeonCore
public import PeonCurl
import PeonDocker
import PeonJSON
public import PeonPlatform
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Peon's node agent: a Swarm global service (one task per node) that does the node-local work on
/// server files in milliseconds, instead of one helper task per step.
///
/// Its task runs the helper image's busybox `httpd` in the node's network namespace, listening on
/// the node's Swarm address only, with the node's data folder bind-mounted at `/peon`. One CGI,
/// handed to the service as a Swarm config, runs one of Peon's fixed operations per request; a
/// request names the operation and carries its inputs as a base64 body of `NAME=value` lines that
/// become shell variables, never shell text. Game containers can reach their node's addresses, so every request
/// must carry the token the scheduler keeps (the `meta` table) and hands to the agent as a Swarm
/// secret; the CGI compares SHA-256 digests of the two, so the comparison does not leak by timing.
///
/// The scheduler (re)deploys the service idempotently: the spec carries a fingerprint of itself
/// (image, port, data folder, script and token by their configs' names, node addresses, limits),
/// and it is created or updated only when that differs, at the first use in a session and whenever
/// the nodes change.
public final class SwarmAgent {
    public static let serviceName = "peon-agent"
    /// Every object of the agent (service, config, secret) carries it.
    public static let label = "peon.agent"
    public static let fingerprintLabel = "peon.agent.spec"
    static let cgiPath = "/peon-agent/www/cgi-bin/peon"
    static let tokenFile = "peon-agent-token"

    public let port: Int
    let token: String
    let curl = CurlEasy()
    /// The node addresses this session last made sure the agent runs for.
    var deployedFor: [String]?

    public init(port: Int, token: String) {
        self.port = port
        self.token = token
    }

    /// A fresh random token (256 bits, hex).
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let text = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    static func digest(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    // MARK: - The CGI

    /// Peon's operations on a node's files: today's helper scripts, as shell functions. They read
    /// their inputs from variables the dispatcher set, print result lines and `ERR <reason>` before
    /// a non-zero exit; every step refuses a symlink at every level, as `LocalServerFiles` does.
    static let operations: [(String, String)] = [
        (
            "prepare",
            #"""
            serverdir; mkdir -p /peon/servers; nolinks "$D"
            if [ ! -d "$D" ]; then mkdir -p "$D"; chown 1000:1000 "$D"; chmod 755 "$D"; fi
            if [ ! -d "$D/actions" ] || [ "$RE" = 1 ]; then installactions; fi
            for v in $VOLS; do nolinks "$D/$v"; if [ ! -e "$D/$v" ]; then mkdir -p "$D/$v"; chown 1000:1000 "$D/$v"; fi; done
            for f in $FILES; do nolinks "$D/$f"; if [ -f "$D/$f" ]; then echo "EXISTS $f"; fi; done
            """#
        ),
        (
            "update",
            #"""
            serverdir; installactions
            if [ "$REDOWNLOAD" = 1 ]; then rm -f "$D/actions/.update"; fi
            if [ "$VALIDATE" = 1 ]; then : > "$D/actions/.validate"; chown 1000:1000 "$D/actions/.validate"; fi
            if [ "$WIPE" = 1 ] && [ -d "$D/data" ]; then nolinks "$D/data"; find "$D/data" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
            """#
        ),
        (
            "manifest",
            #"""
            serverdir; nolinks "$D/peon-server.json"; mkdir -p "$D"
            # Unchanged: nothing written.
            if [ -f "$D/peon-server.json" ] && [ "$(base64 -w 0 "$D/peon-server.json")" = "$M" ]; then return 0; fi
            echo "$M" | base64 -d > "$D/peon-server.json.peon-tmp"; chmod 600 "$D/peon-server.json.peon-tmp"
            mv -f "$D/peon-server.json.peon-tmp" "$D/peon-server.json"
            """#
        ),
        (
            "manifests",
            #"""
            for f in /peon/servers/*/*/peon-server.json; do
              if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(wc -c < "$f")" -le 1048576 ]; then rel=${f#/peon/servers/}; echo "M ${rel%/peon-server.json} $(base64 -w 0 "$f")"; fi
            done
            """#
        ),
        (
            "config",
            #"""
            serverdir
            if [ -d "$D/config" ] && [ ! -L "$D/config" ]; then
              for f in "$D"/config/*; do
                if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(wc -c < "$f")" -le 4096 ]; then echo "C $(basename "$f") $(base64 -w 0 "$f")"; fi
              done
            fi
            """#
        ),
        ("remove", #"serverdir; nolinks "$D"; rm -rf "$D""#),
        // The node's listeners: the task shares the node's network namespace.
        ("ports", #"head -n 1000000 /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null || true"#),
        // One container's counters from the node's cgroups (v1 or v2; mounted read-only at
        // /peon-cgroup) and the node's CPU time (/proc/stat is not namespaced): what Docker's
        // stats would say, for `StatsSample`. Only numbers leave; the kernel wrote them.
        (
            "stats",
            #"""
            case "$C" in *[!0-9a-f]*) fail "bad container id" ;; esac
            [ "${#C}" -eq 64 ] || fail "bad container id"
            for x in $(find /peon-cgroup -maxdepth 6 -type d -name "*$C*" 2>/dev/null | head -n 20); do
              if [ -f "$x/memory.usage_in_bytes" ]; then echo "mem $(cat "$x/memory.usage_in_bytes")"; echo "limit $(cat "$x/memory.limit_in_bytes")"; fi
              if [ -f "$x/memory.current" ]; then echo "mem $(cat "$x/memory.current")"; echo "limit $(cat "$x/memory.max")"; fi
              if [ -f "$x/memory.stat" ]; then grep -E '^(total_inactive_file|inactive_file) ' "$x/memory.stat" || true; fi
              if [ -f "$x/cpuacct.usage" ]; then echo "cpu_ns $(cat "$x/cpuacct.usage")"; fi
              if [ -f "$x/cpu.stat" ]; then grep -E '^usage_usec ' "$x/cpu.stat" || true; fi
            done
            head -n 1 /proc/stat; echo "cpus $(grep -c '^cpu[0-9]' /proc/stat)"
            """#
        ),
    ]

    /// The CGI: checks the token, reads the fields, runs the named operation in a subshell with
    /// `set -e` and ends the answer with `PEON-EXIT <code>`.
    static let cgi: String =
        #"""
        #!/bin/sh
        # Peon's node agent (generated by the scheduler; see SwarmAgent.swift). One request runs one
        # of Peon's fixed operations on this node's data folder, /peon.
        answer() { printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n' "$1"; [ -z "$2" ] || echo "ERR $2"; exit 0; }
        # The secret's digest was taken once, when the agent started (PEON_TOKEN_DIGEST).
        want=${PEON_TOKEN_DIGEST:-$(sha256sum < /run/secrets/peon-agent-token)}
        got=$(printf %s "$HTTP_X_PEON_TOKEN" | sha256sum)
        [ -n "$HTTP_X_PEON_TOKEN" ] && [ "$want" = "$got" ] || answer '401 Unauthorized' 'wrong token'
        [ "$REQUEST_METHOD" = POST ] || answer '405 Method Not Allowed' 'POST only'
        op=$QUERY_STRING
        case "$op" in prepare|update|manifest|manifests|config|remove|ports|stats) ;; *) answer '404 Not Found' 'no such operation' ;; esac
        case "${CONTENT_LENGTH:-0}" in ''|*[!0-9]*) answer '400 Bad Request' 'bad length' ;; esac
        [ "${CONTENT_LENGTH:-0}" -le 67108864 ] || answer '413 Payload Too Large' 'too large'
        # The body is base64 of NAME=value lines (a value has no newline; file contents are base64
        # themselves). The names are Peon's own; the values become variables, never shell text.
        fields=
        if [ "${CONTENT_LENGTH:-0}" -gt 0 ]; then fields=$(head -c "$CONTENT_LENGTH" | base64 -d) || answer '400 Bad Request' 'the body is not base64'; fi
        while IFS= read -r line; do
          [ -n "$line" ] || continue
          n=${line%%=*}; v=${line#*=}
          case "$n" in
            C|D|M|RE|NA|VOLS|FILES|REDOWNLOAD|VALIDATE|WIPE) ;;
            A*|B*) case "${n#?}" in ''|*[!0-9]*) answer '400 Bad Request' "bad field $n" ;; esac ;;
            *) answer '400 Bad Request' 'bad field' ;;
          esac
          eval "$n=\$v"
        done <<PEON_FIELDS
        $fields
        PEON_FIELDS
        fail() { echo "ERR $1"; exit 3; }
        # A server's folder: /peon/servers/<game>/<name>, nothing else.
        serverdir() {
          case "$D" in /peon/servers/*/*) ;; *) fail "bad server folder" ;; esac
          case "$D" in *..*|*//*|*/|/peon/servers/*/*/*) fail "bad server folder" ;; esac
        }
        # Refuses a symlink at any level from /peon down to $1.
        nolinks() { p=/peon; rest=${1#/peon/}; IFS=/; for part in $rest; do p=$p/$part; if [ -L "$p" ]; then fail "unsafe mount source: $p is a symlink"; fi; done; unset IFS; }
        # Installs actions given as A<n> (path) and B<n> (base64 bytes) into $D/actions.
        installactions() {
          mkdir -p "$D/actions"; nolinks "$D/actions"
          i=0; while [ "$i" -lt "${NA:-0}" ]; do eval "p=\$A$i; b=\$B$i"
            case "$p" in ''|/*|*..*) fail "bad action path" ;; esac
            nolinks "$D/actions/$p"; mkdir -p "$(dirname "$D/actions/$p")"
            echo "$b" | base64 -d > "$D/actions/$p.peon-tmp"; chmod 755 "$D/actions/$p.peon-tmp"; mv -f "$D/actions/$p.peon-tmp" "$D/actions/$p"; i=$((i+1)); done
          chown -R 1000:1000 "$D/actions"
        }

        """#
        + operations.map { "op_\($0.0)() {\n\($0.1)\n}\n" }.joined()
            + #"""
            printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n'
            ( set -e; "op_$op" ) 2>&1
            echo "PEON-EXIT $?"

            """#

    /// The task's command: httpd on this node's address (looked up by the node's id in the list
    /// the scheduler gives), in the foreground (the service's init passes SIGTERM to the shell,
    /// whose end ends the container). A node not in the list yet waits for the update that adds
    /// it (the task fails and Swarm starts it again).
    static let command =
        #"""
        addr=; for pair in $PEON_AGENT_NODES; do case "$pair" in "$PEON_NODE_ID="*) addr=${pair#*=} ;; esac; done
        if [ -z "$addr" ]; then echo "peon agent: no address for node $PEON_NODE_ID yet"; sleep 5; exit 1; fi
        PEON_TOKEN_DIGEST=$(sha256sum < /run/secrets/peon-agent-token) || exit 1; export PEON_TOKEN_DIGEST
        # During an update Swarm may start this task before the node's previous one has let go of
        # the port: try again for 20 s instead of failing into Swarm's restart back-off.
        i=0; while [ "$i" -lt 100 ]; do busybox httpd -f -p "$addr:$PEON_AGENT_PORT" -h /peon-agent/www; sleep 0.2; i=$((i+1)); done
        exit 1
        """#

    // MARK: - The service

    /// The agent's service spec. `nodes` are `id=address` pairs, sorted.
    static func serviceSpec(
        image: String, port: Int, dataRoot: String, nodes: [String], config: (id: String, name: String), secret: (id: String, name: String),
        fingerprint: String
    ) -> JSON {
        let labels: JSON = .object([(label, .string("true")), (fingerprintLabel, .string(fingerprint))])
        return [
            "Name": .string(serviceName),
            "Labels": labels,
            "TaskTemplate": [
                "ContainerSpec": [
                    "Image": .string(image), "Command": ["/bin/sh", "-c", .string(command)], "User": "0:0",
                    "Env": [
                        .string("PEON_AGENT_NODES=\(nodes.joined(separator: " "))"), .string("PEON_AGENT_PORT=\(port)"),
                        "PEON_NODE_ID={{.Node.ID}}",
                    ],
                    "Mounts": [
                        ["Type": "bind", "Source": .string(dataRoot), "Target": "/peon"],
                        ["Type": "bind", "Source": "/sys/fs/cgroup", "Target": "/peon-cgroup", "ReadOnly": true],
                    ],
                    "Labels": labels,
                    // Root for chown and deleting the game's files, but no other privilege: no
                    // capability beyond file ownership, a read-only root, bounded pids and memory.
                    "CapabilityDrop": ["ALL"], "CapabilityAdd": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"], "ReadOnly": true,
                    "Configs": [
                        [
                            "File": ["Name": .string(cgiPath), "UID": "0", "GID": "0", "Mode": 0o555], "ConfigID": .string(config.id),
                            "ConfigName": .string(config.name),
                        ]
                    ],
                    "Secrets": [
                        [
                            "File": ["Name": .string(tokenFile), "UID": "0", "GID": "0", "Mode": 0o400], "SecretID": .string(secret.id),
                            "SecretName": .string(secret.name),
                        ]
                    ],
                    // An init as PID 1 passes SIGTERM on, so a drained or updated node's agent ends
                    // at once and frees its port for the next task.
                    "Init": true, "StopGracePeriod": .number(2e9),
                ],
                "Resources": ["Limits": ["MemoryBytes": .number(Double(128 << 20)), "Pids": 256]],
                "RestartPolicy": ["Condition": "any", "Delay": .number(1e9)],
                "Networks": [["Target": "host"]],
                "LogDriver": ["Name": "json-file", "Options": ["max-size": "1m", "max-file": "2"]],
            ],
            "Mode": ["Global": [:]],
            // All nodes at once: a new token or script is in force everywhere within seconds.
            "UpdateConfig": ["Parallelism": 0, "Order": "stop-first", "FailureAction": "continue"],
        ]
    }
}

extension SwarmPlatform {
    /// The address the agent listens on at each node: `id=address`, sorted (the manager's own
    /// `Status.Addr` can read 0.0.0.0; its manager address is used then).
    static func agentNodes(_ nodes: [Node]) -> [String] {
        nodes.filter { !$0.address.isEmpty && $0.address != "0.0.0.0" }.map { "\($0.id)=\($0.address)" }.sorted()
    }

    /// Makes sure the agent's service runs as this Peon means it on `nodes`: creates its config,
    /// secret and service when missing, updates the service when its fingerprint differs, and
    /// leaves everything alone otherwise. Cheap when this session already did it for these nodes.
    public func ensureAgent(_ nodes: [Node]) throws(PlatformError) {
        let pairs = Self.agentNodes(nodes)
        if agent.deployedFor == pairs { return }
        let config = try agentObject(.configs, name: "peon-agent-cgi-" + SwarmAgent.digest(SwarmAgent.cgi).prefix(16), data: SwarmAgent.cgi)
        let secret = try agentObject(.secrets, name: "peon-agent-token-" + SwarmAgent.digest(agent.token).prefix(16), data: agent.token)
        func spec(_ fingerprint: String) -> JSON {
            SwarmAgent.serviceSpec(
                image: helperImage, port: agent.port, dataRoot: dataRoot, nodes: pairs, config: (config.id, config.name),
                secret: (secret.id, secret.name), fingerprint: fingerprint)
        }
        // Of the whole spec, so any change of it (a new Peon's limits too) updates the service.
        let fingerprint = String(SwarmAgent.digest(spec("").text).prefix(16))
        let spec = spec(fingerprint)
        for attempt in 0..<5 {
            let existing = try engine { () throws(DockerError) in try docker.listServices(labels: ["\(SwarmAgent.label)=true"]) }
                .first { $0["Spec"]?["Name"]?.stringValue == SwarmAgent.serviceName }
            do {
                if let existing, let id = existing["ID"]?.stringValue {
                    if existing["Spec"]?["Labels"]?[SwarmAgent.fingerprintLabel]?.stringValue == fingerprint { break }
                    try docker.updateService(
                        id, version: CheckedNumber.int(existing["Version"]?["Index"], in: 0...Int.max) ?? 0, spec: spec)
                } else {
                    _ = try docker.createService(spec)
                }
                break
            } catch {
                // Another session got there first (conflict, update out of sequence): read again.
                if attempt == 4 { throw Self.mapped(error) }
                usleep(100_000)
            }
        }
        // Configs and secrets of earlier versions: removed once no service uses them.
        for kind in [SwarmObjectKind.configs, .secrets] {
            for object in (try? docker.listSwarmObjects(kind, labels: ["\(SwarmAgent.label)=true"])) ?? [] {
                guard let id = object["ID"]?.stringValue, let name = object["Spec"]?["Name"]?.stringValue, name != config.name,
                    name != secret.name
                else { continue }
                try? docker.removeSwarmObject(kind, id)
            }
        }
        agent.deployedFor = pairs
    }

    /// A config or secret of the agent by its content-derived name, made when missing.
    func agentObject(_ kind: SwarmObjectKind, name: String, data: String) throws(PlatformError) -> (id: String, name: String) {
        for _ in 0..<3 {
            let found = try engine { () throws(DockerError) in try docker.listSwarmObjects(kind, labels: ["\(SwarmAgent.label)=true"]) }
                .first { $0["Spec"]?["Name"]?.stringValue == name }
            if let id = found?["ID"]?.stringValue { return (id, name) }
            do {
                return (try docker.createSwarmObject(kind, name: name, data: Array(data.utf8), labels: [(SwarmAgent.label, "true")]), name)
            } catch .conflict {
                continue
            } catch {
                throw Self.mapped(error)
            }
        }
        throw .conflict("the agent's \(kind.rawValue) \(name) could not be made")
    }

    /// One request to the agent on `node`, once: the HTTP status and the answer's lines.
    public func agentRequest(_ node: Node, _ operation: String, fields: [(String, String)] = [], token: String? = nil, seconds: Int = 60)
        throws(CurlError) -> (status: Int, lines: [String])
    {
        var body: [UInt8] = []
        var lines: [UInt8] = []
        for (name, value) in fields {
            // A value is one line: Peon's paths and flags never hold a newline, file contents travel as base64.
            lines += Array("\(name)=\(value.filter { $0 != "\n" && $0 != "\r" && $0 != "\0" })\n".utf8)
        }
        body = Array(Base64.encode(lines).utf8)
        var request = CurlRequest(
            method: "POST", url: "http://\(node.address):\(agent.port)/cgi-bin/peon?\(operation)",
            headers: ["X-Peon-Token: \(token ?? agent.token)", "Content-Type: text/plain"], body: body,
            limits: TransferLimits(connectTimeoutMilliseconds: 2_000, totalTimeoutMilliseconds: seconds * 1000, maximumBytes: 256 << 20))
        request.direct = true
        let response = try agent.curl.perform(request)
        return (response.status, String(decoding: response.body, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// Runs one of the agent's operations on `node`; its output lines. An agent that does not
    /// answer (not deployed yet, restarting after an update) is waited for up to 30 s, then the
    /// operation is `unavailable` (the job is retried later); a failed operation is `refused`.
    func onNode(_ node: Node, _ operation: String, fields: [(String, String)] = [], seconds: Int = 60) throws(PlatformError)
        -> [String]
    {
        // One line per field on the wire: a value with a line break could smuggle a field in.
        if let bad = fields.first(where: { $0.1.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) }) {
            throw .refused("\(bad.0) holds a line break")
        }
        // Draining a node stops its agent's task too (global tasks go as well): say so at once.
        guard node.ready, node.availability != "drain" else {
            throw .unavailable("node \(node.name) is \(node.ready ? "drained" : "down"): its files cannot be reached")
        }
        if agent.deployedFor == nil { try ensureAgent(try nodes()) }
        let deadline = Monotonic.seconds() + 30
        var problem = ""
        var checked = false
        while true {
            do {
                let (status, lines) = try agentRequest(node, operation, fields: fields, seconds: seconds)
                if status == 200, let last = lines.last, last.hasPrefix("PEON-EXIT ") {
                    let code = Int(last.dropFirst(10)) ?? -1
                    let output = lines.dropLast()
                    guard code == 0 else {
                        throw PlatformError.refused(
                            output.last { $0.hasPrefix("ERR ") }.map { String($0.dropFirst(4)) } ?? "exit code \(code)")
                    }
                    return Array(output)
                }
                // 401: an agent of an earlier token may still run until the update reaches it.
                problem =
                    status == 401 ? "refused Peon's token" : "answered \(status) \(lines.first { $0.hasPrefix("ERR ") } ?? "")"
            } catch let error as PlatformError {
                throw error
            } catch {
                problem = "does not answer (\(error))"
            }
            if Monotonic.seconds() > deadline {
                let message = "Peon's node agent on \(node.name) (\(node.address):\(agent.port)) \(problem)"
                throw problem.hasPrefix("does not answer") ? .unavailable(message) : .refused(message)
            }
            if !checked {
                // The nodes may have changed since this session deployed the agent.
                checked = true
                agent.deployedFor = nil
                try ensureAgent(try nodes())
            }
            usleep(100_000)
        }
    }
}
