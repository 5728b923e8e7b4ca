/// One bound host port.
public struct PortKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Transport: String, Sendable { case tcp, udp }
    public let port: Int
    public let transport: Transport

    public init(_ port: Int, _ transport: Transport) {
        self.port = port
        self.transport = transport
    }

    public var description: String { "\(port)/\(transport.rawValue)" }
    public static func < (a: PortKey, b: PortKey) -> Bool { (a.port, a.transport.rawValue) < (b.port, b.transport.rawValue) }
}

extension PortSpec {
    /// The host ports this entry occupies.
    public var keys: [PortKey] {
        switch proto {
        case .tcp: [PortKey(port, .tcp)]
        case .udp: [PortKey(port, .udp)]
        case .both: [PortKey(port, .tcp), PortKey(port, .udp)]
        }
    }
}

/// Chooses a server's port group: the plan's groups in order, then group 0 shifted into `range`
/// (keeping the distances between its ports), so two servers of one game never clash.
public enum PortAllocator {
    public static func allocate(groups: [[PortSpec]], taken: Set<PortKey>, range: ClosedRange<Int>) throws(DomainError) -> [PortSpec] {
        guard let first = groups.first else { return [] }
        for group in groups where isFree(group, taken) { return group }
        let base = first.map(\.port).min()!
        let span = first.map(\.port).max()! - base
        var start = range.lowerBound
        while start + span <= range.upperBound {
            let shifted = first.map { PortSpec(name: $0.name, port: $0.port - base + start, proto: $0.proto) }
            if isFree(shifted, taken) { return shifted }
            start += 1
        }
        throw .noFreePorts(
            "No free ports for this server: the plan's port groups and \(range.lowerBound)-\(range.upperBound) are all in use.")
    }

    static func isFree(_ group: [PortSpec], _ taken: Set<PortKey>) -> Bool {
        group.allSatisfy { spec in spec.keys.allSatisfy { !taken.contains($0) } }
    }

    /// Parses `PEON_PORT_RANGE` (`20000-29999`).
    public static func parseRange(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), 1 <= low, low <= high, high <= 65535 else { return nil }
        return low...high
    }
}
