internal import COpenSSL

/// An in-memory BIO: PEM text in and out without files. The BIO keeps its own copy of the bytes,
/// so nothing has to outlive a closure.
final class MemoryBIO {
    let bio: OpaquePointer

    init() throws(TLSError) {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL("BIO_new") }
        self.bio = bio
    }

    convenience init(_ text: String) throws(TLSError) {
        try self.init()
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return }
        let written = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        guard written == Int32(bytes.count) else { throw .openSSL("BIO_write") }
    }

    deinit { BIO_free(bio) }

    /// Everything written so far, as text (PEM is ASCII).
    var text: String {
        var data: UnsafeMutablePointer<CChar>? = nil
        let count = peon_BIO_get_mem_data(bio, &data)
        guard let data, count > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: count), as: UTF8.self)
    }
}

/// Never prompts: OpenSSL's default passphrase callback reads the terminal when a PEM key is
/// encrypted, which a daemon must not do. Peon's keys are never encrypted.
private func noPassphrase(_: UnsafeMutablePointer<CChar>?, _: Int32, _: Int32, _: UnsafeMutableRawPointer?) -> Int32 { 0 }

enum PEM {
    /// The first certificate in `text`; the caller frees it with `X509_free`.
    static func certificate(_ text: String, what: String) throws(TLSError) -> OpaquePointer {
        let bio = try MemoryBIO(text)
        guard let cert = PEM_read_bio_X509(bio.bio, nil, noPassphrase, nil) else { throw .openSSL("reading the \(what) certificate") }
        return cert
    }

    /// Every certificate in `text` (a bundle); the caller frees each with `X509_free`.
    static func certificates(_ text: String, what: String) throws(TLSError) -> [OpaquePointer] {
        let bio = try MemoryBIO(text)
        var certs: [OpaquePointer] = []
        while let cert = PEM_read_bio_X509(bio.bio, nil, noPassphrase, nil) { certs.append(cert) }
        // The loop ends on "no start line" once the text runs out: expected, not an error.
        let queue = TLSError.drainErrorQueue()
        guard !certs.isEmpty else {
            throw TLSError("reading the \(what) certificates: \(queue.isEmpty ? "no certificate" : queue.joined(separator: "; "))")
        }
        return certs
    }

    /// The private key in `text`; the caller frees it with `EVP_PKEY_free`.
    static func privateKey(_ text: String, what: String) throws(TLSError) -> OpaquePointer {
        let bio = try MemoryBIO(text)
        guard let key = PEM_read_bio_PrivateKey(bio.bio, nil, noPassphrase, nil) else { throw .openSSL("reading the \(what) key") }
        return key
    }

    static func text(certificate: OpaquePointer) throws(TLSError) -> String {
        let bio = try MemoryBIO()
        guard PEM_write_bio_X509(bio.bio, certificate) == 1 else { throw .openSSL("writing a certificate") }
        return bio.text
    }

    /// PKCS#8, unencrypted ("BEGIN PRIVATE KEY").
    static func text(privateKey: OpaquePointer) throws(TLSError) -> String {
        let bio = try MemoryBIO()
        guard PEM_write_bio_PrivateKey(bio.bio, privateKey, nil, nil, 0, nil, nil) == 1 else { throw .openSSL("writing a key") }
        return bio.text
    }
}
