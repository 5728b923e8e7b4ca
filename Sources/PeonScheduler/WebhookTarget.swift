import PeonCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where a webhook delivery may go. The URL's host is resolved once here; loopback, private,
/// link-local (the cloud's metadata service) and unique-local addresses are refused unless
/// `PEON_WEBHOOK_ALLOW` lists them, and the transfer connects to the address that was checked
/// (curl's `--resolve`), so a second lookup cannot name another one. Without this, a key that may
/// add webhooks turns the scheduler into a scanner of the host's own network.
struct WebhookTarget {
    let url: WebURL
    let address: IPAddress

    enum Refusal: Error, CustomStringConvertible {
        case badURL
        case unresolved(String)
        case notAllowed(String)

        var description: String {
            switch self {
            case .badURL: "The webhook's URL cannot be parsed."
            case .unresolved(let host): "The webhook's host \(host) does not resolve."
            case .notAllowed(let host):
                "The webhook's host \(host) resolves only to loopback, private or link-local addresses; PEON_WEBHOOK_ALLOW lists the ones Peon may deliver to."
            }
        }
    }

    static func check(_ text: String, allow: [CIDR], resolve: (String) -> [IPAddress] = resolve) throws(Refusal) -> WebhookTarget {
        guard let url = WebURL(text) else { throw .badURL }
        let found = IPAddress(url.bareHost).map { [$0] } ?? resolve(url.bareHost)
        guard !found.isEmpty else { throw .unresolved(url.bareHost) }
        guard let address = found.first(where: { address in address.isPublic || allow.contains { $0.contains(address) } }) else {
            throw .notAllowed(url.bareHost)
        }
        return WebhookTarget(url: url, address: address)
    }

    /// `host:port:address` for `CURLOPT_RESOLVE`.
    var pin: String { "\(url.bareHost):\(url.port):\(address.isIPv4 ? address.description : "[\(address)]")" }

    /// The host's addresses, IPv4 and IPv6 (getaddrinfo, as curl would resolve it).
    static func resolve(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var out: [IPAddress] = []
        var cursor = result
        while let entry = cursor {
            if let sa = entry.pointee.ai_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var a = v4.pointee.sin_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }) { out.append(ip) }
                    }
                case AF_INET6:
                    sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var a = v6.pointee.sin6_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                    }
                default: break
                }
            }
            cursor = entry.pointee.ai_next
        }
        return out
    }
}
