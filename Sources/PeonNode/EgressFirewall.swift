public import PeonCore
public import PeonPlatform
public import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Puts `EgressRules` into this node's firewall with the node's own iptables, and takes them out.
///
/// Per address family: one `iptables -S` listing, then one `iptables-restore --noflush -w`
/// transaction that rewrites Peon's chains and fixes the jumps to them, so it is atomic and running
/// it again changes nothing. IPv6 is kept too wherever the node has it. iptables rather than nft:
/// it is on every host with Docker, and its DOCKER-USER chain is where the engine expects such rules.
public struct EgressFirewall: Sendable {
    /// Runs one tool by name with arguments and stdin (tests record the calls instead).
    public typealias Runner = @Sendable (_ tool: String, _ arguments: [String], _ input: [UInt8]) -> Command.Result

    let run: Runner
    let hasIPv6: @Sendable () -> Bool

    public init(run: @escaping Runner, hasIPv6: @escaping @Sendable () -> Bool) {
        self.run = run
        self.hasIPv6 = hasIPv6
    }

    /// The node's own tools, found in the system's folders.
    public static let system = EgressFirewall(
        run: { tool, arguments, input in
            guard let path = Command.find(tool) else { return Command.Result(status: 127, output: "\(tool) is not installed") }
            return Command.run(path, arguments, input: input)
        }, hasIPv6: { access("/proc/net/if_inet6", F_OK) == 0 })

    var families: [IPFamily] { hasIPv6() ? [.ipv4, .ipv6] : [.ipv4] }

    static func tools(_ family: IPFamily) -> (list: String, restore: String) {
        family == .ipv4 ? ("iptables", "iptables-restore") : ("ip6tables", "ip6tables-restore")
    }

    /// Installs or rewrites the rules; answers the families now covered.
    public func install(_ rules: EgressRules) throws(PlatformError) -> [IPFamily] {
        for family in families {
            let tools = Self.tools(family)
            try apply(tools.restore, rules.restore(family, listing: try listing(tools.list)))
        }
        return families
    }

    /// Removes Peon's chains and the jumps to them (nothing else); nothing to do when absent.
    public func remove() throws(PlatformError) {
        for family in families {
            let tools = Self.tools(family)
            let current = try listing(tools.list)
            guard EgressRules.installed(current) else { continue }
            try apply(tools.restore, EgressRules.removal(listing: current))
        }
    }

    func listing(_ tool: String) throws(PlatformError) -> String {
        let listed = run(tool, ["-w", "-S"], [])
        guard listed.succeeded else { throw .refused("cannot read the node's firewall (\(tool) -S): \(Self.trimmed(listed.output))") }
        return listed.output
    }

    func apply(_ tool: String, _ text: String) throws(PlatformError) {
        let applied = run(tool, ["--noflush", "-w"], Array(text.utf8))
        guard applied.succeeded else {
            throw .refused("cannot install the games' egress rules (\(tool)): \(Self.trimmed(applied.output))")
        }
    }

    static func trimmed(_ text: String) -> String {
        String(text.split(separator: "\n").suffix(3).joined(separator: "; ").prefix(400))
    }
}
