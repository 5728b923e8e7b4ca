import Crypto
public import PeonCore
public import PeonJSON
public import PeonStore

/// Making, hashing and storing API keys. A key is stored only as its SHA-256; the first 16 hex
/// digits of the hash are an indexed lookup column, the full hash is compared in constant time.
public enum APIKeys {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    /// A new random key: `peon_` and 40 base-62 characters (about 238 bits) from the system CSPRNG.
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return "peon_" + String(decoding: (0..<40).map { _ in alphabet[Int(rng.next(upperBound: UInt(alphabet.count)))] }, as: UTF8.self)
    }

    public static func digest(_ key: String) -> [UInt8] { Array(SHA256.hash(data: Array(key.utf8))) }

    public static func lookup(_ digest: [UInt8]) -> String { hex(digest.prefix(8)) }

    /// The few leading characters that name a key in listings, never enough to use it.
    public static func displayPrefix(_ key: String) -> String {
        String(key.prefix(key.hasPrefix("peon_") ? 9 : 3))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares two digests without an early exit, so timing says nothing about where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// Stores `key` (or a new one) with `scope`; returns its id and the key text.
    public static func create(
        in tx: Transaction, scope: Scope, label: String, key: String? = nil, bootstrap: Bool = false, expiresAt: Int64? = nil,
        now: Int64
    ) throws -> (id: String, key: String) {
        let text = key ?? generate()
        let digest = digest(text)
        var rng = SystemRandomNumberGenerator()
        let id = "key_" + hex((0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) })
        try tx.insertKey(
            id: id, prefix: displayPrefix(text), lookup: lookup(digest), hash: digest, scope: scope, label: label, bootstrap: bootstrap,
            expiresAt: expiresAt, now: now)
        return (id, text)
    }

    /// Ensures the operator's configured key exists as an admin key, and revokes the key an earlier
    /// `PEON_API_KEY` made (changing the setting retires the old key); generates one on a first run
    /// with none configured. Returns a generated key (to print once), else nil.
    public static func bootstrap(in tx: Transaction, configured: String?, now: Int64) throws -> String? {
        if let configured {
            let lookup = lookup(digest(configured))
            if try !tx.keyExists(lookup: lookup) {
                _ = try create(in: tx, scope: .admin, label: "PEON_API_KEY", key: configured, bootstrap: true, now: now)
            }
            try tx.replaceBootstrapKeys(keeping: lookup, now: now)
            return nil
        }
        guard try tx.listKeys().isEmpty else { return nil }
        return try create(in: tx, scope: .admin, label: "generated at first start", now: now).key
    }
}

extension APIKeys {
    /// A label is one line of at most 100 characters (Unicode scalars, as JSON Schema counts)
    /// without control characters or line breaks: it is printed in tables and logs.
    public static func isValidLabel(_ label: String) -> Bool {
        let refused: Set<UInt32> = [0x7F, 0x85, 0x2028, 0x2029]
        return label.unicodeScalars.count <= 100 && !label.unicodeScalars.contains { $0.value < 0x20 || refused.contains($0.value) }
    }

    /// An expiry from a client (epoch seconds or ISO 8601); it must lie in the future.
    public static func parseExpiry(_ value: JSON?, now: Int64) throws(DomainError) -> Int64? {
        guard let value, !value.isNull else { return nil }
        guard let at = Timestamp.parse(value) else {
            throw .invalid(
                field: "expires_at", reason: "expires_at must be epoch seconds or an ISO 8601 time such as 2030-01-01T00:00:00Z.")
        }
        guard at > now else { throw .invalid(field: "expires_at", reason: "expires_at must be in the future.") }
        return at
    }
}
