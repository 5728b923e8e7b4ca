/// Ports this host's processes listen on, read from /proc/net (any namespace's view it is given).
public enum HostPorts {
    /// TCP sockets in LISTEN (state 0A) and bound UDP sockets (state 07), IPv4 and IPv6.
    public static func listening(procNet: String = "/proc/net") -> (tcp: Set<Int>, udp: Set<Int>) {
        func read(_ name: String, state: String?) -> Set<Int> {
            guard let bytes = try? Files.read("\(procNet)/\(name)", limit: 16 << 20) else { return [] }
            return parse(String(decoding: bytes, as: UTF8.self), state: state)
        }
        return (read("tcp", state: "0A").union(read("tcp6", state: "0A")), read("udp", state: "07").union(read("udp6", state: "07")))
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
