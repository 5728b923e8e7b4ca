/// An IPv4 or IPv6 address range (`10.0.0.0/8`, `fd00::/64`, or one address), validated where it
/// enters: only digits, hex, `.`, `:` and one `/`, so its text is safe as one argument of a
/// firewall rule (`PEON_GAME_EGRESS_ALLOW` reaches `iptables-restore` this way).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public enum Family: String, Sendable { case ipv4, ipv6 }

    public let family: Family
    /// The address as written (lowercased); the kernel masks host bits itself.
    public let address: String
    public let prefix: Int

    public var description: String { "\(address)/\(prefix)" }

    /// nil unless `text` is an address, optionally with a prefix length within its family's bits.
    public init?(_ text: String) {
        let parts = text.lowercased().split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let first = parts.first else { return nil }
        let address = String(first)
        let family: Family
        if Self.isIPv4(Substring(address)) {
            family = .ipv4
        } else if Self.isIPv6(address) {
            family = .ipv6
        } else {
            return nil
        }
        let bits = family == .ipv4 ? 32 : 128
        var prefix = bits
        if parts.count == 2 {
            guard (1...3).contains(parts[1].utf8.count), parts[1].utf8.allSatisfy({ (48...57).contains($0) }), let n = Int(parts[1]),
                n <= bits
            else { return nil }
            prefix = n
        }
        self.family = family
        self.address = address
        self.prefix = prefix
    }

    static func isIPv4(_ text: Substring) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4
            && octets.allSatisfy { o in
                (1...3).contains(o.utf8.count) && o.utf8.allSatisfy { (48...57).contains($0) } && (Int(o) ?? 256) <= 255
            }
    }

    /// RFC 4291 text: eight groups of 1–4 hex digits, one `::` standing for one or more zero
    /// groups, an IPv4 address as the last two groups; no zone (`%eth0`).
    static func isIPv6(_ text: String) -> Bool {
        guard text.utf8.count <= 45, text.contains(":") else { return false }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return false }
        var groups = 0
        for (i, half) in halves.enumerated() where !half.isEmpty {
            let items = half.split(separator: ":", omittingEmptySubsequences: false)
            for (j, item) in items.enumerated() {
                if i == halves.count - 1, j == items.count - 1, item.contains(".") {
                    guard isIPv4(item) else { return false }
                    groups += 2
                } else {
                    guard (1...4).contains(item.utf8.count), item.utf8.allSatisfy({ $0.isHexDigit }) else { return false }
                    groups += 1
                }
            }
        }
        return halves.count == 2 ? groups <= 7 : groups == 8
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool { (48...57).contains(self) || (97...102).contains(self) }
}
