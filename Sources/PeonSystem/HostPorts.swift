/// Ports this host's processes listen on, read from /proc/net (any namespace's view it is given).
public enum HostPorts {
    /// The local ports of every TCP and UDP socket, IPv4 and IPv6: a listener's, and also a
    /// connection's (an outgoing connection's ephemeral port, a socket in TIME_WAIT), since the
    /// engine cannot publish a port such a socket holds either ("address already in use": the
    /// ephemeral range, 32768-60999, overlaps the ports Peon hands out).
    public static func listening(procNet: String = "/proc/net") -> (tcp: Set<Int>, udp: Set<Int>) {
        func read(_ name: String) -> Set<Int> {
            guard let bytes = try? Files.read("\(procNet)/\(name)", limit: 16 << 20) else { return [] }
            return parse(String(decoding: bytes, as: UTF8.self), state: nil)
        }
        return (read("tcp").union(read("tcp6")), read("udp").union(read("udp6")))
    }

    /// Local ports of the table's sockets in `state` (every socket when nil).
    public static func parse(_ table: String, state: String?) -> Set<Int> {
        var ports = Set<Int>()
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, let colon = fields[1].lastIndex(of: ":") else { continue }
            if let state, fields[3] != state { continue }
            if let port = Int(fields[1][fields[1].index(after: colon)...], radix: 16) { ports.insert(port) }
        }
        return ports
    }
}
