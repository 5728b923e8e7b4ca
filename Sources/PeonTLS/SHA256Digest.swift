internal import COpenSSL

/// SHA-256 with OpenSSL's EVP (the library already linked for TLS), fed in order and read once at
/// the end as lowercase hex. One thread at a time.
public final class SHA256Digest: @unchecked Sendable {  // fed by one thread, read after it ended
    private let context: OpaquePointer
    /// The bytes fed so far.
    public private(set) var count: Int64 = 0

    public init() {
        // Allocation failure is out of memory, where nothing goes on anyway.
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
        count += Int64(bytes.count)
    }

    /// The digest as 64 hex digits.
    public func finalize() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest.prefix(Int(length)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
