internal import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Peon's private certificate authority and the certificates it issues to the scheduler and the
/// node agents. Keys are EC P-256, signatures ECDSA-SHA256.
public enum Certificates {
    /// Backdating absorbs small clock differences between the nodes.
    static let backdateSeconds = 3600

    /// A fresh certificate authority: EC P-256 key, self-signed, basicConstraints critical CA:TRUE pathlen 0,
    /// keyUsage keyCertSign+cRLSign, subject CN = commonName, random 128-bit serial, valid from now-1h for `days`.
    public static func makeAuthority(commonName: String, days: Int = 3650) throws(TLSError) -> PEMPair {
        guard days > 0 else { throw TLSError("a certificate must be valid for at least one day, not \(days)") }
        let key = try makeKey()
        defer { EVP_PKEY_free(key) }
        let cert = try newCertificate(
            commonName: commonName, key: key, notBefore: -backdateSeconds, notAfter: days * 86400 - backdateSeconds)
        defer { X509_free(cert) }
        guard X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 else { throw .openSSL("setting the issuer") }
        try addExtensions(
            to: cert, issuer: cert,
            [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ])
        try sign(cert, with: key)
        return PEMPair(certificate: try PEM.text(certificate: cert), key: try PEM.text(privateKey: key))
    }

    /// A leaf signed by `authority`: EC P-256, CA:FALSE, keyUsage digitalSignature, extendedKeyUsage serverAuth
    /// (role .server) or clientAuth (role .client) and nothing else, subjectAltName DNS:<each of dnsNames>,
    /// subject CN = commonName, issuer = the authority's subject, random serial, valid from now-1h for `days`.
    public static func issue(
        commonName: String, dnsNames: [String], role: TLSRole, by authority: PEMPair, days: Int = 825
    ) throws(TLSError) -> PEMPair {
        guard days > 0 else { throw TLSError("a certificate must be valid for at least one day, not \(days)") }
        return try issue(
            commonName: commonName, dnsNames: dnsNames, role: role, by: authority,
            notBefore: -backdateSeconds, notAfter: days * 86400 - backdateSeconds)
    }

    /// `issue` with the validity as offsets in seconds from now (tests make expired and future certificates).
    static func issue(
        commonName: String, dnsNames: [String], role: TLSRole, by authority: PEMPair, notBefore: Int, notAfter: Int
    ) throws(TLSError) -> PEMPair {
        for name in dnsNames where !isDNSName(name) { throw TLSError("not a DNS name for a certificate: \"\(name)\"") }
        let authorityCert = try PEM.certificate(authority.certificate, what: "authority")
        defer { X509_free(authorityCert) }
        let authorityKey = try PEM.privateKey(authority.key, what: "authority")
        defer { EVP_PKEY_free(authorityKey) }
        guard X509_check_private_key(authorityCert, authorityKey) == 1 else {
            throw .openSSL("the authority key does not match its certificate")
        }

        let key = try makeKey()
        defer { EVP_PKEY_free(key) }
        let cert = try newCertificate(commonName: commonName, key: key, notBefore: notBefore, notAfter: notAfter)
        defer { X509_free(cert) }
        guard X509_set_issuer_name(cert, X509_get_subject_name(authorityCert)) == 1 else { throw .openSSL("setting the issuer") }
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, role == .server ? "serverAuth" : "clientAuth"),
            (NID_subject_key_identifier, "hash"),
            // Lets verifiers pick the right authority if one is ever rotated alongside the old one.
            (NID_authority_key_identifier, "keyid"),
        ]
        // Names were checked above: no comma or colon can reach the extension syntax.
        if !dnsNames.isEmpty {
            extensions.append((NID_subject_alt_name, dnsNames.map { "DNS:\($0)" }.joined(separator: ",")))
        }
        try addExtensions(to: cert, issuer: authorityCert, extensions)
        try sign(cert, with: authorityKey)
        return PEMPair(certificate: try PEM.text(certificate: cert), key: try PEM.text(privateKey: key))
    }

    /// The certificate's notAfter as unix seconds (for rotation decisions), nil when it does not parse.
    public static func expiry(_ certificatePEM: String) -> Int64? {
        defer { ERR_clear_error() }
        guard let cert = try? PEM.certificate(certificatePEM, what: "") else { return nil }
        defer { X509_free(cert) }
        guard let notAfter = X509_get0_notAfter(cert) else { return nil }
        var time = tm()
        guard ASN1_TIME_to_tm(notAfter, &time) == 1 else { return nil }
        return Int64(timegm(&time))
    }

    // MARK: - Building blocks

    /// Letters, digits, hyphens and dots (and a leading "*." wildcard label), at most 253 characters.
    static func isDNSName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let body = name.hasPrefix("*.") ? name.dropFirst(2) : Substring(name)
        let labels = body.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D }
        }
    }

    /// A fresh P-256 key; the caller frees it with `EVP_PKEY_free`.
    static func makeKey() throws(TLSError) -> OpaquePointer {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { throw .openSSL("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(context) == 1,
            peon_EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else { throw .openSSL("generating an EC P-256 key") }
        return key
    }

    /// A v3 certificate for `key` with subject CN, a random 128-bit serial and its validity as offsets
    /// from now; unsigned, without issuer or extensions. The caller frees it with `X509_free`.
    static func newCertificate(commonName: String, key: OpaquePointer, notBefore: Int, notAfter: Int) throws(TLSError) -> OpaquePointer {
        guard let cert = X509_new() else { throw .openSSL("X509_new") }
        do throws(TLSError) {
            guard X509_set_version(cert, Int(X509_VERSION_3)) == 1 else { throw TLSError.openSSL("setting the version") }
            try setRandomSerial(cert)
            guard X509_gmtime_adj(X509_getm_notBefore(cert), notBefore) != nil,
                X509_gmtime_adj(X509_getm_notAfter(cert), notAfter) != nil
            else { throw TLSError.openSSL("setting the validity") }
            guard X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1 else {
                throw TLSError.openSSL("setting the common name \"\(commonName)\"")
            }
            guard X509_set_pubkey(cert, key) == 1 else { throw TLSError.openSSL("setting the public key") }
            return cert
        } catch {
            X509_free(cert)
            throw error
        }
    }

    static func setRandomSerial(_ cert: OpaquePointer) throws(TLSError) {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else { throw .openSSL("RAND_bytes") }
        // A serial must be positive and non-zero; 128 random bits are never all zero in practice,
        // but a zero serial would be invalid, so make sure.
        bytes[15] |= bytes.allSatisfy { $0 == 0 } ? 1 : 0
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw .openSSL("BN_bin2bn") }
        defer { BN_free(number) }
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert)) != nil else { throw .openSSL("setting the serial") }
    }

    /// Adds extensions written in OpenSSL's config syntax; `issuer` is the signer (for the key identifier).
    static func addExtensions(to cert: OpaquePointer, issuer: OpaquePointer, _ extensions: [(Int32, String)]) throws(TLSError) {
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer, cert, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_nconf_nid(nil, &context, nid, value) else {
                throw .openSSL("building the \(String(cString: OBJ_nid2sn(nid))) extension \"\(value)\"")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(cert, ext, -1) == 1 else { throw .openSSL("adding an extension") }
        }
    }

    static func sign(_ cert: OpaquePointer, with key: OpaquePointer) throws(TLSError) {
        guard X509_sign(cert, key, EVP_sha256()) > 0 else { throw .openSSL("signing the certificate") }
    }
}
