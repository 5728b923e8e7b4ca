/// An `http://` or `https://` URL taken apart as Peon checks it: scheme, host and port of its
/// authority. Refuses credentials (`user@`), backslashes, spaces and control characters, and any
/// other scheme. The host keeps IPv6 brackets (`[::1]`).
public struct WebURL: Sendable, Equatable {
    public let scheme: String
    public let host: String
    public let port: Int

    public init?(_ text: String, maximumBytes: Int = 2048) {
        guard text.utf8.count <= maximumBytes, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let lower = text.lowercased()
        if lower.hasPrefix("https://") {
            scheme = "https"
        } else if lower.hasPrefix("http://") {
            scheme = "http"
        } else {
            return nil
        }
        let authority = lower.dropFirst(scheme.count + 3).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("\\") else { return nil }
        let hostPart: Substring
        let rest: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[...close]
            rest = authority[authority.index(after: close)...]
        } else {
            hostPart = authority.prefix { $0 != ":" }
            rest = authority.dropFirst(hostPart.count)
        }
        guard !hostPart.isEmpty, hostPart != "[]" else { return nil }
        host = String(hostPart)
        if rest.isEmpty {
            port = scheme == "https" ? 443 : 80
        } else {
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
            port = p
        }
    }

    /// Encrypted, or plain http that never leaves this machine: what may carry a secret (a webhook's
    /// signed body) or code (plans).
    public var isPrivateTransport: Bool { scheme == "https" || isLoopback }

    /// The host without IPv6 brackets, as a resolver takes it.
    public var bareHost: String { host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host }

    /// `localhost`, `[::1]` or an IPv4 literal in 127.0.0.0/8: nothing leaves the machine. A name
    /// that merely starts with `127.` (`127.x.example.com`) is not.
    public var isLoopback: Bool {
        if host == "localhost" || host == "[::1]" { return true }
        guard let address = IPv4Literal(host) else { return false }
        return address.octets[0] == 127
    }
}

/// A dotted-quad IPv4 literal (four decimal octets, no leading zeros beyond `0`).
public struct IPv4Literal: Sendable, Equatable {
    public let octets: [UInt8]

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            octets.append(value)
        }
        self.octets = octets
    }
}
