public import PeonCore
import PeonDocker
import PeonJSON
public import PeonNodeAgent
public import PeonPlatform
import PeonSystem
public import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Peon's node agent on Swarm: a global service (one task per node) running `peon-agent` from
/// Peon's own image, in the node's network namespace, listening on the node's Swarm address. The
/// scheduler reaches it over mutual TLS (`AgentChannel`); the agent runs `NodeOperation`s with the
/// same code the scheduler runs in-process on Docker (`PeonNode.LocalNode`).
///
/// The scheduler (re)deploys the service idempotently: the spec carries a fingerprint of itself
/// (image, port, data folder, keys by their secrets' names, node addresses, limits), and it is
/// created or updated only when that differs, at the first use in a session and whenever the
/// nodes change.
public final class SwarmAgent {
    public static let serviceName = "peon-agent"
    /// Every object of the agent (service, secrets) carries it.
    public static let label = "peon.agent"
    public static let fingerprintLabel = "peon.agent.spec"
    /// Where the secrets appear in the agent's task.
    public static let secretFiles = (authority: "peon-agent-ca.pem", certificate: "peon-agent-cert.pem", key: "peon-agent-key.pem")

    public let port: Int
    /// The image with `peon-agent` (`PEON_AGENT_IMAGE`: Peon's own).
    public let image: String
    /// The node engine's socket, the same path on every node (stdin, a container's address, stats).
    public let nodeSocket: String
    /// The process's current keys (rotated keys are deployed at the next node operation).
    public let keys: AgentKeys
    /// The node addresses (and keys) this session last made sure the agent runs for.
    var deployedFor: [String]?

    public init(port: Int, image: String, nodeSocket: String = "/var/run/docker.sock", keys: AgentKeys) {
        self.port = port
        self.image = image
        self.nodeSocket = nodeSocket
        self.keys = keys
    }

    /// Keys made here (tests, one-off tools).
    public convenience init(port: Int, image: String, nodeSocket: String = "/var/run/docker.sock", credentials: AgentCredentials)
        throws(TLSError)
    {
        self.init(port: port, image: image, nodeSocket: nodeSocket, keys: try AgentKeys(credentials))
    }

    public var credentials: AgentCredentials { keys.credentials }

    /// What a deployment is for: the nodes' addresses and the keys' fingerprint.
    func deployment(_ pairs: [String]) -> [String] { pairs + ["keys=" + Self.digest(keys.credentials.agent.certificate).prefix(16)] }

    /// SHA-256 hex of `text` (OpenSSL's, as the agent's checksums: one implementation).
    static func digest(_ text: String) -> String {
        let digest = SHA256Digest()
        Array(text.utf8).withUnsafeBytes { digest.update($0) }
        return digest.finalize()
    }

    /// The channel to the agent on a node's address.
    func channel(_ address: String) -> AgentChannel { AgentChannel(host: address, port: port, keys: { [keys] in keys.context }) }

    // MARK: - The service

    /// The agent's service spec. `nodes` are `id=address` pairs, sorted; `secrets` the CA
    /// certificate, the agent's certificate and its key, in that order.
    static func serviceSpec(
        image: String, port: Int, dataRoot: String, nodeSocket: String, nodes: [String],
        secrets: [(id: String, name: String, file: String)],
        fingerprint: String
    ) -> JSON {
        let labels: JSON = .object([(label, .string("true")), (fingerprintLabel, .string(fingerprint))])
        return [
            "Name": .string(serviceName),
            "Labels": labels,
            "TaskTemplate": [
                "ContainerSpec": [
                    // The image's entrypoint runs the whole stack: the agent is its own command.
                    "Image": .string(image), "Command": ["/opt/peon/bin/peon-agent"], "User": "0:0",
                    "Env": [
                        .string("PEON_AGENT_NODES=\(nodes.joined(separator: " "))"), .string("PEON_AGENT_PORT=\(port)"),
                        "PEON_NODE_ID={{.Node.ID}}", "PEON_AGENT_DATA=/peon", .string("PEON_AGENT_HOST_DATA=\(dataRoot)"),
                        "PEON_AGENT_TLS=/run/secrets", "PEON_DOCKER_SOCKET=/run/peon-node/docker.sock",
                        // A thread per connection would get a malloc arena of its own, kept after it
                        // ends; a stream's large buffers go back to the system when freed.
                        "MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072",
                        // libcurl links GnuTLS (through librtmp) though the agent never uses it: its
                        // set-up at load time costs about 1 MiB of the agent's memory for nothing.
                        "GNUTLS_NO_IMPLICIT_INIT=1",
                    ],
                    "Mounts": [
                        ["Type": "bind", "Source": .string(dataRoot), "Target": "/peon"],
                        ["Type": "bind", "Source": .string(nodeSocket), "Target": "/run/peon-node/docker.sock"],
                    ],
                    "Labels": labels,
                    // Root, with these few capabilities, only until it read its keys, made the servers
                    // folder and joined the socket's group; then the agent becomes the games' user
                    // (1000) before its first connection, keeping only NET_ADMIN, ambient, for the
                    // iptables that installs the node's egress rules.
                    "CapabilityDrop": ["ALL"],
                    "CapabilityAdd": ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN"],
                    "ReadOnly": true,
                    "Secrets": .array(
                        secrets.map {
                            [
                                "File": ["Name": .string($0.file), "UID": "0", "GID": "0", "Mode": 0o400], "SecretID": .string($0.id),
                                "SecretName": .string($0.name),
                            ]
                        }),
                    // An init as PID 1 passes SIGTERM on, so a drained or updated node's agent ends
                    // at once and frees its port for the next task.
                    "Init": true, "StopGracePeriod": .number(5e9),
                    // Not the image's check (it asks the API on this node, which the agent is not):
                    // failing, it would have Swarm kill the agent every two minutes, mid-operation.
                    "Healthcheck": ["Test": ["NONE"]],
                ],
                "Resources": ["Limits": ["MemoryBytes": .number(Double(64 << 20)), "Pids": 128]],
                "RestartPolicy": ["Condition": "any", "Delay": .number(1e9)],
                "Networks": [["Target": "host"]],
                "LogDriver": ["Name": "json-file", "Options": ["max-size": "1m", "max-file": "2"]],
            ],
            "Mode": ["Global": [:]],
            // All nodes at once: new keys are in force everywhere within seconds.
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

    /// Makes sure the agent's service runs as this Peon means it on `nodes`: creates its secrets
    /// and service when missing, updates the service when its fingerprint differs, and leaves
    /// everything alone otherwise. Cheap when this session already did it for these nodes.
    public func ensureAgent(_ nodes: [Node]) throws(PlatformError) {
        let pairs = Self.agentNodes(nodes)
        if agent.deployedFor == agent.deployment(pairs) { return }
        let keys = agent.credentials
        var secrets: [(id: String, name: String, file: String)] = []
        for (file, data) in [
            (SwarmAgent.secretFiles.authority, keys.authority.certificate), (SwarmAgent.secretFiles.certificate, keys.agent.certificate),
            (SwarmAgent.secretFiles.key, keys.agent.key),
        ] {
            let name = "peon-agent-" + file.dropLast(4) + "-" + SwarmAgent.digest(data).prefix(16)
            let made = try agentSecret(name: name, data: data)
            secrets.append((made.id, made.name, file))
        }
        func spec(_ fingerprint: String) -> JSON {
            SwarmAgent.serviceSpec(
                image: agent.image, port: agent.port, dataRoot: dataRoot, nodeSocket: agent.nodeSocket, nodes: pairs, secrets: secrets,
                fingerprint: fingerprint)
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
        // Secrets (and configs of the former shell agent) of earlier versions: removed once no service uses them.
        for kind in [SwarmObjectKind.configs, .secrets] {
            for object in (try? docker.listSwarmObjects(kind, labels: ["\(SwarmAgent.label)=true"])) ?? [] {
                guard let id = object["ID"]?.stringValue, let name = object["Spec"]?["Name"]?.stringValue,
                    !secrets.contains(where: { $0.name == name })
                else { continue }
                try? docker.removeSwarmObject(kind, id)
            }
        }
        agent.deployedFor = agent.deployment(pairs)
    }

    /// A secret of the agent by its content-derived name, made when missing.
    func agentSecret(name: String, data: String) throws(PlatformError) -> (id: String, name: String) {
        for _ in 0..<3 {
            let found = try engine { () throws(DockerError) in try docker.listSwarmObjects(.secrets, labels: ["\(SwarmAgent.label)=true"]) }
                .first { $0["Spec"]?["Name"]?.stringValue == name }
            if let id = found?["ID"]?.stringValue { return (id, name) }
            do {
                return (
                    try docker.createSwarmObject(.secrets, name: name, data: Array(data.utf8), labels: [(SwarmAgent.label, "true")]), name
                )
            } catch .conflict {
                continue
            } catch {
                throw Self.mapped(error)
            }
        }
        throw .conflict("the agent's secret \(name) could not be made")
    }

    /// The channel to a node's agent, which waits for an agent that does not answer yet (being
    /// deployed, restarting after an update, its node just joined) up to 30 s, re-checking the
    /// deployment once, then fails `unavailable` (the job waits for the platform). A drained or
    /// down node has no agent (draining stops global tasks too): its files are `unavailable` at once.
    func channel(_ node: Node) throws(PlatformError) -> any NodeChannel {
        guard node.ready, node.availability != "drain" else {
            throw .unavailable("node \(node.name) is \(node.ready ? "drained" : "down"): its files cannot be reached")
        }
        // First use in this session, or keys rotated since: (re)deploy.
        if agent.deployedFor?.last != agent.deployment([]).last { try ensureAgent(try nodes()) }
        let channel = PatientChannel(platform: self, node: node, inner: agent.channel(node.address))
        return observe.map { ObservedChannel(channel, observer: $0) } ?? channel
    }

    public func channel(for uid: ServerUID) throws(PlatformError) -> any NodeChannel { try channel(try holder(uid)) }

    public func channels() throws(PlatformError) -> [any NodeChannel] {
        var found: [any NodeChannel] = []
        for node in try nameNodes(try nodes()) where node.usable { found.append(try channel(node)) }
        return found
    }

    /// Every usable node's rules. Swarm's tasks have no network of their own and run on their
    /// node's default bridge, so the rules hold it too (`defaultBridge`).
    /// A node that fails does not keep the others from theirs; the first failure is thrown after.
    public func ensureEgress() throws(PlatformError) {
        guard let egress else { return }
        var failure: PlatformError?
        for channel in try channels() {
            do throws(PlatformError) {
                try channel.apply(egress, defaultBridge: true)
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }
}

/// An agent channel that waits for its agent to come up (see `SwarmPlatform.channel(_:)`).
final class PatientChannel: NodeChannel {
    let platform: SwarmPlatform
    let node: SwarmPlatform.Node
    let inner: AgentChannel

    init(platform: SwarmPlatform, node: SwarmPlatform.Node, inner: AgentChannel) {
        self.platform = platform
        self.node = node
        self.inner = inner
    }

    func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON {
        // A stream cannot be replayed: an operation with one waits for the agent first (a cheap
        // operation, retried), then runs once.
        let retries = input == nil && output == nil
        if !retries { _ = try perform(.listeners, input: nil, output: nil) }
        let deadline = Monotonic.seconds() + 30
        var checked = false
        while true {
            do {
                return try inner.perform(operation, input: input, output: output)
            } catch .unavailable(let message) {
                guard retries, Monotonic.seconds() < deadline else { throw .unavailable("node \(node.name): \(message)") }
                if !checked {
                    // The nodes may have changed since this session deployed the agent.
                    checked = true
                    platform.agent.deployedFor = nil
                    try platform.ensureAgent(try platform.nodes())
                }
                usleep(200_000)
            }
        }
    }
}
