internal import COpenSSL

/// An SSL_CTX for one side of Peon's mutual TLS: TLS 1.3 only, trusting only `authority` (PEM text,
/// loaded from memory into a fresh X509_STORE, never the system store), presenting `identity`.
/// Peer verification is mandatory both ways: a server requires a client certificate with the
/// clientAuth EKU; a client requires a server certificate with the serverAuth EKU whose
/// subjectAltName names `expectedPeerName` (never the address: agents are reached by IP under a
/// fixed name). Expired and not-yet-valid certificates fail.
///
/// Immutable once made, so one context serves any number of connections on any threads.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    let role: TLSRole
    let expectedPeerName: String?

    /// - Parameters:
    ///   - authority: PEM of the certificate authority (or several) to trust.
    ///   - expectedPeerName: the DNS name the peer's certificate must carry. Required for a client;
    ///     on a server it is optional and, when given, demands that name of client certificates too.
    public init(role: TLSRole, identity: PEMPair, authority: String, expectedPeerName: String? = nil) throws(TLSError) {
        ERR_clear_error()
        if role == .client && (expectedPeerName ?? "").isEmpty {
            throw TLSError("a client context needs the name the server's certificate must carry")
        }
        guard let context = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw .openSSL("SSL_CTX_new")
        }
        self.context = context
        self.role = role
        self.expectedPeerName = expectedPeerName
        // From here on deinit frees the context if a step throws.
        try configure(identity: identity, authority: authority)
    }

    deinit { SSL_CTX_free(context) }

    private func configure(identity: PEMPair, authority: String) throws(TLSError) {
        guard peon_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
            peon_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else { throw .openSSL("restricting to TLS 1.3") }
        // AES-128-GCM first: as strong as this link needs, and a third cheaper than AES-256 per byte
        // of a backup stream (both peers are Peon).
        guard SSL_CTX_set_ciphersuites(context, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1 else {
            throw .openSSL("setting the cipher suites")
        }
        // A peer's end of stream without close_notify reads as a plain end (0), not an error: framing
        // above TLS (exact lengths) catches truncation.
        _ = peon_SSL_CTX_set_options(context, peon_SSL_OP_IGNORE_UNEXPECTED_EOF)
        // A stream's records are read many at a time (one recv for up to 64 KiB), not header and
        // body apart: half the system calls of a backup's transfer.
        peon_SSL_CTX_set_read_ahead(context, 1)
        SSL_CTX_set_default_read_buffer_len(context, 64 << 10)

        try trust(authority)
        try present(identity)

        let server = role == .server
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nil)
        guard let param = SSL_CTX_get0_param(context) else { throw .openSSL("SSL_CTX_get0_param") }
        guard X509_VERIFY_PARAM_set_purpose(param, server ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER) == 1 else {
            throw .openSSL("setting the certificate purpose")
        }
        // The authority signs leaves directly (pathlen 0): leaf + authority.
        X509_VERIFY_PARAM_set_depth(param, 2)

        if server {
            // TLS 1.3 lets a client finish its handshake before the server has checked the client's
            // certificate, so a refused client would only notice on its first read. The server sends
            // one session ticket once it has accepted the client, and TLSStream.connect waits for it:
            // a refusal then fails the client's connect too. The ticket is stateful (SSL_OP_NO_TICKET)
            // and the session cache is off, so it can never resume a session (which would skip
            // certificate checks).
            _ = peon_SSL_CTX_set_options(context, peon_SSL_OP_NO_TICKET)
            _ = peon_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
            guard peon_SSL_CTX_set_num_tickets(context, 1) == 1 else { throw .openSSL("SSL_CTX_set_num_tickets") }
            let sessionContext: [UInt8] = Array("peon".utf8)
            guard SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count)) == 1 else {
                throw .openSSL("SSL_CTX_set_session_id_context")
            }
        } else {
            // The ticket arrives through the new-session callback, which marks the connection accepted;
            // the session itself is dropped (no resumption).
            _ = peon_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            SSL_CTX_sess_set_new_cb(context) { ssl, _ in
                SSL_set_ex_data(ssl, TLSContext.acceptedSlot, UnsafeMutableRawPointer(bitPattern: 1))
                return 0
            }
        }
    }

    /// The ex_data slot marked (non-nil) once the server's ticket arrived: 0 is the application's
    /// slot, and every SSL here is PeonTLS's own.
    static let acceptedSlot: Int32 = 0

    /// A fresh store with only the authority's certificates: the system's CAs never count.
    private func trust(_ authority: String) throws(TLSError) {
        let certs = try PEM.certificates(authority, what: "authority")
        defer { for cert in certs { X509_free(cert) } }
        guard let store = X509_STORE_new() else { throw .openSSL("X509_STORE_new") }
        // The context owns the store from here (and frees its default one).
        SSL_CTX_set_cert_store(context, store)
        for cert in certs {
            guard X509_STORE_add_cert(store, cert) == 1 else { throw .openSSL("trusting the authority") }
        }
    }

    private func present(_ identity: PEMPair) throws(TLSError) {
        let cert = try PEM.certificate(identity.certificate, what: "identity")
        defer { X509_free(cert) }
        let key = try PEM.privateKey(identity.key, what: "identity")
        defer { EVP_PKEY_free(key) }
        // Both take their own reference.
        guard SSL_CTX_use_certificate(context, cert) == 1 else { throw .openSSL("using the identity certificate") }
        guard SSL_CTX_use_PrivateKey(context, key) == 1 else { throw .openSSL("using the identity key") }
        guard SSL_CTX_check_private_key(context) == 1 else { throw .openSSL("the identity key does not match its certificate") }
    }
}
