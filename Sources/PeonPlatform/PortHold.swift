public import PeonCore
public import PeonJSON

/// A sleeping server's published ports, as its node holds them, and how they wake it.
public struct PortHold: Sendable, Equatable {
    public let uid: ServerUID
    public let ports: [PortKey]
    public let rule: WakeRule

    /// Holds on one node (a node holds at most this many servers asleep).
    public static let maximumHolds = 4096
    /// The longest a `holds` query waits for a wake, in milliseconds (within the operation's time).
    public static let longestWait = 5000

    public init(uid: ServerUID, ports: [PortKey], rule: WakeRule) {
        self.uid = uid
        self.ports = ports
        self.rule = rule
    }

    public var json: JSON {
        [
            "uid": .string(uid.description), "ports": .array(ports.map { .string($0.description) }), "rule": rule.json,
        ]
    }

    public init?(json: JSON) {
        guard let text = json["uid"]?.stringValue, let uid = try? ServerUID(validating: text), let items = json["ports"]?.arrayValue,
            items.count <= 64, let rule = json["rule"].flatMap(WakeRule.init(json:))
        else { return nil }
        var ports: [PortKey] = []
        for item in items {
            guard let key = item.stringValue.flatMap(PortKey.init(wire:)) else { return nil }
            ports.append(key)
        }
        self.init(uid: uid, ports: ports, rule: rule)
    }
}

/// What a node says of its holds: per server, the ports it could not take (another program has
/// them), and the wakes not yet taken: each woken server once, with what woke it.
public struct PortHoldState: Sendable, Equatable {
    public struct Wake: Sendable, Equatable {
        public let uid: ServerUID
        public let port: PortKey
        public let from: String

        public init(uid: ServerUID, port: PortKey, from: String) {
            self.uid = uid
            self.port = port
            self.from = from
        }
    }

    public var failed: [ServerUID: [String]] = [:]
    public var woken: [Wake] = []

    public init() {}

    public var json: JSON {
        [
            "failed": .array(
                failed.sorted { $0.key.description < $1.key.description }.map {
                    ["uid": .string($0.key.description), "ports": .array($0.value.map(JSON.string))]
                }),
            "woken": .array(
                woken.map { ["uid": .string($0.uid.description), "port": .string($0.port.description), "from": .string($0.from)] }),
        ]
    }

    public init(json: JSON) {
        for item in json["failed"]?.arrayValue ?? [] {
            guard let uid = item["uid"]?.stringValue.flatMap({ try? ServerUID(validating: $0) }) else { continue }
            failed[uid] = (item["ports"]?.arrayValue ?? []).compactMap(\.stringValue)
        }
        woken = (json["woken"]?.arrayValue ?? []).compactMap { item in
            guard let uid = item["uid"]?.stringValue.flatMap({ try? ServerUID(validating: $0) }),
                let port = item["port"]?.stringValue.flatMap(PortKey.init(wire:))
            else { return nil }
            return Wake(uid: uid, port: port, from: String((item["from"]?.stringValue ?? "").prefix(64)))
        }
    }
}

extension PortKey {
    /// `27015/udp`, as `description` writes it.
    public init?(wire text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, parts[0].utf8.count <= 5, let port = Int(parts[0]), (1...65535).contains(port),
            let transport = Transport(rawValue: String(parts[1]))
        else { return nil }
        self.init(port, transport)
    }
}

extension NodeChannel {
    /// Holds exactly `holds` on the node (the others let go); answers what it holds and who woke.
    public func hold(_ holds: [PortHold]) throws(PlatformError) -> PortHoldState { PortHoldState(json: try run(.hold(holds))) }

    /// The node's holds; waits up to `waitMilliseconds` for a wake when none is there yet.
    public func holdState(waitMilliseconds: Int = 0) throws(PlatformError) -> PortHoldState {
        PortHoldState(json: try run(.holds(waitMilliseconds: waitMilliseconds)))
    }

    /// Lets the server's held ports go; answers the ones that were held (the server's own).
    public func release(_ uid: ServerUID) throws(PlatformError) -> Set<PortKey> {
        Set((try run(.release(uid))["held"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(PortKey.init(wire:)) })
    }

    public func handoff(_ uid: ServerUID, container: String) throws(PlatformError) { _ = try run(.handoff(uid, container: container)) }
}
