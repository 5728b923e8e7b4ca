#if canImport(Glibc)
    import Glibc
#endif

public enum IPFamily: String, Sendable { case ipv4, ipv6 }

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, parsed by `inet_pton` (no shorthand forms such
/// as `127.1` or `0x7f.0.0.1`).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        bytes = withUnsafeBytes(of: &v6) { Array($0) }
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }
    public var family: IPFamily { isIPv4 ? .ipv4 : .ipv6 }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: 64)
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        return inet_ntop(AF_INET6, &raw, &buffer, 64).map { String(cString: $0) } ?? "?"
    }

    /// The IPv4 address an IPv6 one carries (`::ffff:a.b.c.d`, `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`).
    public var embeddedIPv4: IPAddress? {
        guard !isIPv4 else { return nil }
        let head = Array(bytes[0..<12])
        let mapped = [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
        let compatible = [UInt8](repeating: 0, count: 12)
        let nat64: [UInt8] = [0, 0x64, 0xff, 0x9b] + [UInt8](repeating: 0, count: 8)
        guard head == mapped || head == nat64 || (head == compatible && bytes[12...].contains { $0 != 0 }) else { return nil }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    /// Reachable on the internet: not loopback, private (RFC 1918, unique-local), link-local (the
    /// cloud's metadata service), carrier NAT, multicast, reserved, documentation or unspecified.
    public var isPublic: Bool {
        if let inner = embeddedIPv4 { return inner.isPublic }
        return !Self.special.contains { $0.contains(self) }
    }

    static let special: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
    ].map { CIDR($0)! }
}

/// An address block, `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one). Its text
/// (`description`) is the address as `inet_ntop` writes it and the prefix: only digits, hex, `.`,
/// `:` and `/`, so it is safe as one argument of a firewall rule (`PEON_GAME_EGRESS_ALLOW`).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p), parts[1].allSatisfy(\.isNumber) else { return nil }
            prefix = p
        } else {
            prefix = bits
        }
        network = address
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var left = prefix
        for (a, n) in zip(address.bytes, network.bytes) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xff : ~(0xff >> UInt8(left))
            if a & mask != n & mask { return false }
            left -= 8
        }
        return true
    }

    public var description: String { "\(network)/\(prefix)" }
    public var family: IPFamily { network.family }

    /// A comma-separated list (an environment variable's value); an empty value is an empty list.
    /// `/0` is refused: an operator opens the networks they need, never everything at once.
    public static func list(_ text: String, field: String) throws(DomainError) -> [CIDR] {
        var out: [CIDR] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingCharacters(in: " \t")
            guard !trimmed.isEmpty else { continue }
            guard let cidr = CIDR(trimmed) else {
                throw .invalid(field: field, reason: "\(field): not an address or CIDR: \(trimmed.prefix(60))")
            }
            guard cidr.prefix > 0 else {
                throw .invalid(field: field, reason: "\(field): \(trimmed) would allow every address; list networks")
            }
            out.append(cidr)
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
