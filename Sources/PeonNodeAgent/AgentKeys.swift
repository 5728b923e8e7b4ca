public import PeonJSON
public import PeonTLS
import Synchronization

/// The keys of Peon's node agents: a CA Peon made, the agents' certificate (server role, name
/// `peon-agent`) and the scheduler's (client role). The scheduler keeps them in its store.
public struct AgentCredentials: Sendable, Equatable {
    public let authority: PEMPair
    public let agent: PEMPair
    public let scheduler: PEMPair

    public static let agentName = "peon-agent"

    public init(authority: PEMPair, agent: PEMPair, scheduler: PEMPair) {
        self.authority = authority
        self.agent = agent
        self.scheduler = scheduler
    }

    /// A new CA and both certificates (rotation is a new set: the agents' service is updated with it).
    public static func make() throws(TLSError) -> AgentCredentials {
        var rng = SystemRandomNumberGenerator()
        let authority = try Certificates.makeAuthority(commonName: "Peon node agents \(String(rng.next() as UInt32, radix: 16))")
        return AgentCredentials(
            authority: authority,
            agent: try Certificates.issue(commonName: agentName, dnsNames: [agentName], role: .server, by: authority),
            scheduler: try Certificates.issue(commonName: "peon-scheduler", dnsNames: ["peon-scheduler"], role: .client, by: authority))
    }

    /// The stored form (the `meta` table).
    public var json: JSON {
        func pair(_ p: PEMPair) -> JSON { ["certificate": .string(p.certificate), "key": .string(p.key)] }
        return ["authority": pair(authority), "agent": pair(agent), "scheduler": pair(scheduler)]
    }

    public init?(json: JSON) {
        func pair(_ key: String) -> PEMPair? {
            guard let c = json[key]?["certificate"]?.stringValue, let k = json[key]?["key"]?.stringValue else { return nil }
            return PEMPair(certificate: c, key: k)
        }
        guard let a = pair("authority"), let g = pair("agent"), let s = pair("scheduler") else { return nil }
        self.init(authority: a, agent: g, scheduler: s)
    }
}

/// The keys this process uses now, shared by its threads: replaced whole when they are rotated
/// (`peon agent-keys rotate` writes new ones to the store; the scheduler picks them up), so every
/// connection made after that uses the new ones.
public final class AgentKeys: Sendable {
    private let state: Mutex<(credentials: AgentCredentials, context: TLSContext)>

    public init(_ credentials: AgentCredentials) throws(TLSError) {
        state = Mutex((credentials, try Self.context(credentials)))
    }

    /// The scheduler's side of the mutual TLS for `credentials`.
    static func context(_ credentials: AgentCredentials) throws(TLSError) -> TLSContext {
        try TLSContext(
            role: .client, identity: credentials.scheduler, authority: credentials.authority.certificate,
            expectedPeerName: AgentCredentials.agentName)
    }

    public var credentials: AgentCredentials { state.withLock { $0.credentials } }
    public var context: TLSContext { state.withLock { $0.context } }

    /// Takes `credentials` when they differ from the current ones; true when they did.
    @discardableResult
    public func replace(with credentials: AgentCredentials) throws(TLSError) -> Bool {
        guard credentials != self.credentials else { return false }
        let context = try Self.context(credentials)
        state.withLock { $0 = (credentials, context) }
        return true
    }
}
