/// What game containers may reach (`PEON_GAME_EGRESS`, `PEON_GAME_EGRESS_ALLOW`).
public enum GameEgress: Sendable, Equatable {
    /// Peon's rules on every node: games reach the internet and their own server's peers, but not
    /// the node itself (any of its addresses) nor link-local addresses (a cloud's metadata
    /// service), unless a range in `allow` covers the destination.
    case restricted(allow: [CIDR])
    /// No rules: Peon removes its own from every node and installs none.
    case open
}

/// Peon's firewall rules for game bridges, as `iptables-restore --noflush` input.
///
/// Pure (the node's current `iptables -S` listing in, text out), so every rule is unit-tested;
/// `PeonNode.EgressFirewall` feeds the text to the node's iptables. Peon's two chains are rewritten
/// whole and the jumps to them added or removed in one `COMMIT`, so a game never sees half a rule
/// set, and running it again changes nothing. Only DROP and RETURN are used: an ACCEPT of Peon's
/// could let through what the engine's or the operator's own rules drop.
public struct EgressRules: Sendable, Equatable {
    /// Forwarded traffic from game bridges: link-local destinations dropped.
    public static let forwardChain = "PEON-EGRESS"
    /// Traffic from game bridges to the node itself (any of its addresses, current or future):
    /// dropped unless it answers a connection the node opened.
    public static let inputChain = "PEON-INPUT"
    /// Every bridge Peon makes for a game is named `peon` + 11 hex digits (`ServerSpec.bridgeName`),
    /// so one wildcard covers them all, those made later too.
    public static let bridgePattern = "peon+"
    /// The engine's chain for its users' rules, which it jumps to before any of its own ACCEPTs.
    public static let dockerUserChain = "DOCKER-USER"

    public let allow: [CIDR]
    /// Interface names (or iptables `+` wildcards) whose traffic is held to the rules.
    public let interfaces: [String]

    /// nil when an interface name is not one iptables takes (1–15 characters of `[A-Za-z0-9_.-]`,
    /// an optional trailing `+`).
    public init?(allow: [CIDR], interfaces: [String]) {
        guard !interfaces.isEmpty, interfaces.allSatisfy(Self.isInterface) else { return nil }
        self.allow = allow
        var unique: [String] = []
        for name in interfaces where !unique.contains(name) { unique.append(name) }
        self.interfaces = unique
    }

    public static func isInterface(_ name: String) -> Bool {
        let body = name.hasSuffix("+") ? name.dropLast() : Substring(name)
        return (1...15).contains(body.utf8.count) && !body.hasPrefix("-")
            && body.utf8.allSatisfy { c in
                (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 95 || c == 46 || c == 45
            }
    }

    /// The restore text for one family, given the table's current `iptables -S` (`ip6tables -S`)
    /// listing: the chains' rules, stale or duplicate jumps deleted, missing jumps inserted first.
    public func restore(_ family: IPFamily, listing: String) -> String {
        let forwardFrom = Self.chains(listing).contains(Self.dockerUserChain) ? Self.dockerUserChain : "FORWARD"
        var wanted: [String] = []
        for name in interfaces {
            wanted.append("-A \(forwardFrom) -i \(name) -j \(Self.forwardChain)")
            wanted.append("-A INPUT -i \(name) -j \(Self.inputChain)")
        }
        let allowed = allow.filter { $0.family == family }
        var lines = ["*filter", ":\(Self.forwardChain) - [0:0]", ":\(Self.inputChain) - [0:0]"]
        let established = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
        lines.append("-A \(Self.forwardChain) \(established)")
        for range in allowed { lines.append("-A \(Self.forwardChain) -d \(range) -j RETURN") }
        lines.append("-A \(Self.forwardChain) -d \(family == .ipv4 ? "169.254.0.0/16" : "fe80::/10") -j DROP")
        lines.append("-A \(Self.inputChain) \(established)")
        if family == .ipv6 {
            // Neighbour discovery with the bridge's own address: without it no IPv6 leaves the bridge.
            for type in [135, 136] { lines.append("-A \(Self.inputChain) -p ipv6-icmp -m icmp6 --icmpv6-type \(type) -j RETURN") }
        }
        for range in allowed { lines.append("-A \(Self.inputChain) -d \(range) -j RETURN") }
        lines.append("-A \(Self.inputChain) -j DROP")
        var kept: Set<String> = []
        for jump in Self.jumps(listing) {
            if wanted.contains(jump), kept.insert(jump).inserted { continue }
            lines.append("-D" + jump.dropFirst(2))
        }
        // Inserted at the top (in reverse, so they keep this order): before the engine's ACCEPTs
        // and DOCKER-USER's final RETURN.
        for jump in wanted.reversed() where !kept.contains(jump) {
            let words = jump.split(separator: " ", maxSplits: 2)
            lines.append("-I \(words[1]) 1 \(words[2])")
        }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The restore text that removes Peon's jumps and chains (nothing else) from a listing's table.
    public static func removal(listing: String) -> String {
        var lines = ["*filter", ":\(forwardChain) - [0:0]", ":\(inputChain) - [0:0]"]
        for jump in jumps(listing) { lines.append("-D" + jump.dropFirst(2)) }
        lines += ["-X \(forwardChain)", "-X \(inputChain)", "COMMIT"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether a listing holds any of Peon's chains.
    public static func installed(_ listing: String) -> Bool {
        let names = chains(listing)
        return names.contains(forwardChain) || names.contains(inputChain)
    }

    /// User-defined chains of a listing (`-N NAME` lines).
    static func chains(_ listing: String) -> Set<String> {
        Set(listing.split(separator: "\n").compactMap { $0.hasPrefix("-N ") ? String($0.dropFirst(3)) : nil })
    }

    /// Rules of other chains that jump to Peon's, as listed (`-A CHAIN ... -j PEON-…`).
    static func jumps(_ listing: String) -> [String] {
        listing.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count >= 4, words[0] == "-A", words[1] != forwardChain, words[1] != inputChain,
                let j = words.lastIndex(of: "-j"), j + 1 < words.count, words[j + 1] == forwardChain || words[j + 1] == inputChain
            else { return nil }
            return String(line)
        }
    }
}
