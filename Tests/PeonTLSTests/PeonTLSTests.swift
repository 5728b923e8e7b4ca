import Testing

@testable import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

// Serialized: each test runs a server thread and blocking sockets; the machine has few cores.
@Suite(.serialized) struct PeonTLSTests {
    @Test func mutualTLSEchoesAMebibyteBothWays() throws {
        let pki = try PKI()
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in
            let received = try stream.read(exactly: 1 << 20)
            try stream.write(received)
            return stream.peerCommonName
        }
        let client = try TLSStream.connect(
            host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        defer { client.close() }
        #expect(client.peerCommonName == "node-1")
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        try client.write(payload)
        #expect(try client.read(exactly: payload.count) == payload)
        // The server closed after echoing: a clean end reads as 0, again and again.
        #expect(try readSome(client) == 0)
        #expect(try readSome(client) == 0)
        #expect(try server.join().get() == "peon-scheduler")

        // And the other way round: the client closes, the server reads 0.
        let waiting = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in
            [try readSome(stream), try readSome(stream)]
        }
        let second = try TLSStream.connect(
            host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        try second.write([1, 2, 3])
        second.close()
        second.close()  // Idempotent.
        #expect(try waiting.join().get() == [3, 0])
    }

    @Test func serverRefusesAClientFromAnotherAuthority() throws {
        let pki = try PKI()
        let stranger = try Certificates.makeAuthority(commonName: "Someone else's CA")
        let impostor = try Certificates.issue(commonName: "peon-scheduler", dnsNames: [], role: .client, by: stranger)
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in try stream.read(exactly: 1) }
        // The client trusts the real authority (so it accepts the server) but presents the impostor's certificate.
        let context = try TLSContext(
            role: .client, identity: impostor, authority: pki.authority.certificate, expectedPeerName: "peon-agent")
        let clientError = #expect(throws: TLSError.self) {
            let stream = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: context, timeoutMilliseconds: 5000)
            try stream.write([42])
        }
        let serverError = try #require(server.join().failure)
        #expect(serverError.description.contains("certificate verify failed"), "\(serverError)")
        #expect(serverError.description.contains("unable to get local issuer certificate"), "\(serverError)")
        // The server's alert ("unknown ca"), or a reset if its close overtook the alert.
        let clientText = clientError?.description ?? ""
        #expect(clientText.contains("alert") || clientText.contains("reset"), "\(clientText)")
    }

    @Test func serverRefusesAClientPresentingAServerCertificate() throws {
        let pki = try PKI()
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in try stream.read(exactly: 1) }
        let context = try pki.clientContext(identity: pki.server)
        #expect(throws: TLSError.self) {
            let stream = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: context, timeoutMilliseconds: 5000)
            try stream.write([42])
        }
        let serverError = try #require(server.join().failure)
        #expect(serverError.description.contains("unsuitable certificate purpose"), "\(serverError)")
    }

    @Test func clientRefusesAServerWithoutTheExpectedName() throws {
        let pki = try PKI()
        let misnamed = try Certificates.issue(commonName: "peon-agent", dnsNames: ["other-agent"], role: .server, by: pki.authority)
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext(identity: misnamed)) { stream throws(TLSError) in try stream.read(exactly: 1)
        }
        // The CN says "peon-agent" but only the subjectAltName counts.
        let clientError = #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        }
        #expect(clientError?.description.contains("hostname mismatch") == true, "\(String(describing: clientError))")
        #expect(server.join().failure != nil)
    }

    @Test func clientRefusesAServerPresentingAClientCertificate() throws {
        let pki = try PKI()
        let clientRoled = try Certificates.issue(commonName: "node-1", dnsNames: ["peon-agent"], role: .client, by: pki.authority)
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext(identity: clientRoled)) { stream throws(TLSError) in
            try stream.read(exactly: 1)
        }
        let clientError = #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        }
        #expect(clientError?.description.contains("unsuitable certificate purpose") == true, "\(String(describing: clientError))")
        #expect(server.join().failure != nil)
    }

    @Test func serverWithAnExpectedNameChecksTheClientsName() throws {
        let pki = try PKI()
        let named = try Certificates.issue(commonName: "sched", dnsNames: ["peon-scheduler"], role: .client, by: pki.authority)
        let listener = try localListener()
        defer { listener.close() }
        let context = try TLSContext(
            role: .server, identity: pki.server, authority: pki.authority.certificate, expectedPeerName: "peon-scheduler")
        let accepting = serveOnce(listener, context) { stream throws(TLSError) in try stream.read(exactly: 1) }
        let client = try TLSStream.connect(
            host: "127.0.0.1", port: listener.port, context: try pki.clientContext(identity: named), timeoutMilliseconds: 5000)
        try client.write([5])
        #expect(try accepting.join().get() == [5])
        client.close()

        // The PKI's client certificate names nothing.
        let refusing = serveOnce(listener, context) { stream throws(TLSError) in try stream.read(exactly: 1) }
        #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        }
        let serverError = try #require(refusing.join().failure)
        #expect(serverError.description.contains("hostname mismatch"), "\(serverError)")
    }

    @Test func expiredAndNotYetValidCertificatesAreRefused() throws {
        let pki = try PKI()
        let expired = try Certificates.issue(
            commonName: "node-1", dnsNames: ["peon-agent"], role: .server, by: pki.authority, notBefore: -2 * 86400, notAfter: -86400)
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext(identity: expired)) { stream throws(TLSError) in try stream.read(exactly: 1)
        }
        let clientError = #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        }
        #expect(clientError?.description.contains("certificate has expired") == true, "\(String(describing: clientError))")
        #expect(server.join().failure != nil)

        let future = try Certificates.issue(
            commonName: "peon-scheduler", dnsNames: [], role: .client, by: pki.authority, notBefore: 86400, notAfter: 2 * 86400)
        let refusing = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in try stream.read(exactly: 1) }
        #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(
                host: "127.0.0.1", port: listener.port, context: try pki.clientContext(identity: future), timeoutMilliseconds: 5000)
        }
        let serverError = try #require(refusing.join().failure)
        #expect(serverError.description.contains("certificate is not yet valid"), "\(serverError)")
    }

    @Test func silentClientTimesOutTheServerHandshake() throws {
        let pki = try PKI()
        let listener = try localListener()
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext(), handshakeTimeout: 300) { _ throws(TLSError) in () }
        let fd = plainConnect(port: listener.port)
        defer { close(fd) }
        let error = try #require(server.join().failure)
        #expect(error.description.contains("timed out"), "\(error)")
    }

    @Test func readTimesOut() throws {
        let pki = try PKI()
        let listener = try localListener()
        defer { listener.close() }
        // The server sends nothing and waits for the client to give up.
        let server = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in try stream.read(exactly: 1) }
        let client = try TLSStream.connect(
            host: "127.0.0.1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        client.setTimeout(milliseconds: 200)
        let error = #expect(throws: TLSError.self) { _ = try client.read(exactly: 1) }
        #expect(error?.description.contains("timed out") == true)
        client.close()
        #expect(server.join().failure != nil)  // An early end: the server wanted one byte.
    }

    @Test func connectFailsFastWhenNobodyListens() throws {
        let pki = try PKI()
        let listener = try localListener()
        let port = listener.port
        listener.close()
        #expect(listener.accept(timeoutMilliseconds: 10) == nil)
        let error = #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "127.0.0.1", port: port, context: try pki.clientContext(), timeoutMilliseconds: 2000)
        }
        #expect(error?.description.contains("refused") == true, "\(String(describing: error))")
        #expect(throws: TLSError.self) {
            _ = try TLSStream.connect(host: "peon-agent", port: port, context: try pki.clientContext(), timeoutMilliseconds: 2000)
        }
    }

    @Test func ipv6Loopback() throws {
        let pki = try PKI()
        let listener: TCPListener
        do { listener = try TCPListener(host: "::1", port: 0) } catch { return }  // No IPv6 here.
        defer { listener.close() }
        let server = serveOnce(listener, try pki.serverContext()) { stream throws(TLSError) in try stream.read(exactly: 2) }
        let client = try TLSStream.connect(host: "::1", port: listener.port, context: try pki.clientContext(), timeoutMilliseconds: 5000)
        try client.write([7, 8])
        #expect(try server.join().get() == [7, 8])
        client.close()
    }

    @Test func certificatesCarryWhatPeonAsks() throws {
        let pki = try PKI()
        let now = Int64(time(nil))
        let authorityExpiry = try #require(Certificates.expiry(pki.authority.certificate))
        #expect(abs(authorityExpiry - (now + 3650 * 86400)) <= 2 * 3600)
        let leaf = try Certificates.issue(commonName: "x", dnsNames: ["peon-agent"], role: .server, by: pki.authority, days: 30)
        let leafExpiry = try #require(Certificates.expiry(leaf.certificate))
        #expect(abs(leafExpiry - (now + 30 * 86400)) <= 2 * 3600)
        #expect(Certificates.expiry("not a certificate") == nil)
        #expect(leaf.key.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(leaf.certificate.hasPrefix("-----BEGIN CERTIFICATE-----"))
        // Two certificates never share a serial or a key.
        let again = try Certificates.issue(commonName: "x", dnsNames: ["peon-agent"], role: .server, by: pki.authority, days: 30)
        #expect(again != leaf)
    }

    @Test func misuseIsRefused() throws {
        let pki = try PKI()
        let other = try PKI()
        // A key that is not the certificate's.
        #expect(throws: TLSError.self) {
            _ = try TLSContext(
                role: .server, identity: PEMPair(certificate: pki.server.certificate, key: other.server.key),
                authority: pki.authority.certificate)
        }
        #expect(throws: TLSError.self) {
            _ = try Certificates.issue(
                commonName: "x", dnsNames: [], role: .client, by: PEMPair(certificate: pki.authority.certificate, key: other.authority.key))
        }
        #expect(throws: TLSError.self) { _ = try TLSContext(role: .server, identity: pki.server, authority: "garbage") }
        // A client must say whom it expects.
        #expect(throws: TLSError.self) { _ = try TLSContext(role: .client, identity: pki.client, authority: pki.authority.certificate) }
        #expect(throws: TLSError.self) {
            _ = try Certificates.issue(commonName: "x", dnsNames: ["a,DNS:evil"], role: .server, by: pki.authority)
        }
        #expect(throws: TLSError.self) { _ = try Certificates.makeAuthority(commonName: "x", days: 0) }
        #expect(throws: TLSError.self) { _ = try TCPListener(host: "localhost", port: 0) }
    }
}

@Suite struct SHA256DigestTests {
    @Test func matchesKnownDigests() {
        let empty = SHA256Digest()
        #expect(empty.finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let abc = SHA256Digest()
        Array("ab".utf8).withUnsafeBytes { abc.update($0) }
        Array("c".utf8).withUnsafeBytes { abc.update($0) }
        #expect(abc.count == 3 && abc.finalize() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
