internal import COpenSSL

/// A failure of PeonTLS: OpenSSL's own error queue text where OpenSSL failed, so that a refused
/// peer reads as "certificate verify failed" rather than a bare code.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// `what` failed inside OpenSSL: drains this thread's error queue into the message (draining
    /// also keeps stale entries from being blamed on a later call).
    static func openSSL(_ what: String) -> TLSError {
        let queue = drainErrorQueue()
        return TLSError(queue.isEmpty ? what : "\(what): \(queue.joined(separator: "; "))")
    }

    static func drainErrorQueue() -> [String] {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            let text = buffer.withUnsafeMutableBufferPointer { raw -> String in
                ERR_error_string_n(code, raw.baseAddress, raw.count)
                return String(cString: raw.baseAddress!)
            }
            messages.append(text)
        }
        return messages
    }
}

/// PEM text of a certificate and its private key.
public struct PEMPair: Sendable, Equatable {
    public let certificate: String
    public let key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// Which end of Peon's mutual TLS a certificate or context is for.
public enum TLSRole: Sendable {
    /// The node agent: presents a serverAuth certificate, verifies clientAuth ones.
    case server
    /// The scheduler: presents a clientAuth certificate, verifies serverAuth ones.
    case client
}
