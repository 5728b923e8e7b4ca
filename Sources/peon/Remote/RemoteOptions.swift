import ArgumentParser
import PeonCore
import PeonCurl
import PeonJSON
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What every server verb needs to reach a running API: where, with which key, how to trust it.
///
/// The URL and key come from `--url`/`--key`, else `PEON_URL`/`PEON_API_KEY`, else the config
/// file `~/.config/peon/config` (`url = …`, `key = …`; refused unless mode 0600, as it holds a key).
///
/// Every call carries the key, so nothing here lets a place the user did not name decide whom it
/// goes to: the stack's own certificate is trusted only from the data folder Peon is configured
/// with (`--data-dir`/`PEON_DATA_DIR`, an absolute path), never from the current folder, where
/// anyone who can write a `var/tls/cert.pem` would become the API; and `http://`, which sends the
/// key in clear, needs `--allow-http`.
struct RemoteOptions: ParsableArguments {
    @Option(help: "The API's base URL (default: $PEON_URL, the config file, else https://127.0.0.1:$PEON_HTTPS_PORT or :8443).")
    var url: String?
    @Option(help: "The API key (default: $PEON_API_KEY, else the config file).") var key: String?
    @Option(help: "A PEM certificate to trust for the API's TLS.") var cacert: String?
    @Flag(help: "Do not verify the API's TLS certificate.") var insecure = false
    @Flag(help: "Allow an http:// URL, which sends the API key unencrypted.") var allowHttp = false
    @Option(help: "The stack's data folder (absolute), whose tls/cert.pem is trusted (default: $PEON_DATA_DIR).")
    var dataDir: String?
    @Flag(help: "Print the API's JSON answer instead of text, for scripts.") var json = false

    static var configPath: String? { ProcessEnvironment.home.map { $0 + "/.config/peon/config" } }

    /// Resolves the settings into a client; a config or key problem exits with `ExitCodes.unreachable`.
    func client() throws -> APIClient {
        let env = ProcessEnvironment.read(["PEON_URL", "PEON_API_KEY", "PEON_HTTPS_PORT", "PEON_DATA_DIR"])
        var file: [String: String] = [:]
        if (url ?? env["PEON_URL"]) == nil || (key ?? env["PEON_API_KEY"]) == nil, let path = Self.configPath {
            file = try Self.readConfig(path)
        }
        let base = url ?? env["PEON_URL"] ?? file["url"] ?? "https://127.0.0.1:\(env["PEON_HTTPS_PORT"] ?? "8443")"
        guard base.hasPrefix("https://") || base.hasPrefix("http://") else {
            throw Failure("the URL must start with https:// (got \(base.prefix(100)))", code: ExitCodes.unreachable)
        }
        if base.hasPrefix("http://"), !allowHttp {
            throw Failure(
                "\(base.prefix(100)) would send the API key unencrypted: use https://, or pass --allow-http", code: ExitCodes.unreachable)
        }
        guard let key = key ?? env["PEON_API_KEY"] ?? file["key"], !key.isEmpty else {
            throw Failure(
                "no API key: pass --key, set PEON_API_KEY, or put `key = …` in ~/.config/peon/config (mode 0600)",
                code: ExitCodes.unreachable)
        }
        var ca = cacert
        var stackCertificate = false
        // On the stack's own host: trust the certificate the stack generated, without --insecure
        // (and the system's CAs if the server's certificate is not that one). Only from the data
        // folder named by absolute path: a relative one, like no setting at all, would be
        // whatever folder `peon` runs in.
        if ca == nil, let dataDir = dataDir ?? env["PEON_DATA_DIR"], dataDir.hasPrefix("/"),
            Files.kind(dataDir + "/tls/cert.pem") == .file
        {
            ca = dataDir + "/tls/cert.pem"
            stackCertificate = true
        }
        let client = APIClient(base: String(base.hasSuffix("/") ? base.dropLast() : base[...]), key: key, caFile: ca, insecure: insecure)
        client.json = json
        client.fallBackToSystemCAs = stackCertificate
        return client
    }

    /// `name = value` lines; `#` starts a comment. The file holds a key, so others must not read it.
    static func readConfig(_ path: String) throws -> [String: String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [:] }
        guard info.st_mode & 0o077 == 0 else {
            throw Failure("\(path) is readable by others; run: chmod 600 \(path)", code: ExitCodes.unreachable)
        }
        guard let bytes = try? Files.read(path, limit: 64 << 10) else {
            throw Failure("cannot read \(path)", code: ExitCodes.unreachable)
        }
        var values: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let text = line.trimmingSpaces
            guard !text.isEmpty, !text.hasPrefix("#"), let eq = text.firstIndex(of: "=") else { continue }
            values[String(text[..<eq]).trimmingSpaces] = String(text[text.index(after: eq)...]).trimmingSpaces
        }
        return values
    }
}

/// `peon`'s exit codes (also in `peon --help` and the README).
enum ExitCodes {
    static let ok: Int32 = 0
    /// The API refused the request, or the job it started failed.
    static let refused: Int32 = 1
    /// This server does not offer the verb yet (its API answered 404 for the route).
    static let unsupported: Int32 = 2
    /// The API could not be reached (connection, TLS) or the URL, key or config file is unusable.
    static let unreachable: Int32 = 3
    /// Bad usage (ArgumentParser's validation failure).
    static let usage: Int32 = 64
}

/// A message for stderr and an exit code; `Peon.main` prints it as `Error: …`.
struct Failure: Error, CustomStringConvertible {
    let description: String
    let code: Int32
    init(_ message: String, code: Int32) {
        description = message
        self.code = code
    }
}

/// An HTTP client of the Peon API over libcurl (`PeonCurl`), one handle reused for every call.
final class APIClient {
    let base: String
    let key: String
    private(set) var caFile: String?
    let insecure: Bool
    /// `caFile` is the local stack's certificate: a server with another certificate is checked
    /// against the system's CAs instead.
    var fallBackToSystemCAs = false
    /// `--json`: an error answer's JSON goes to stdout too, so scripts read the code from it.
    var json = false
    private(set) var curl = CurlEasy()

    init(base: String, key: String, caFile: String?, insecure: Bool) {
        self.base = base
        self.key = key
        self.caFile = caFile
        self.insecure = insecure
    }

    /// One call; transport failures exit `unreachable`. Returns the status and the parsed body.
    func send(_ method: String, _ path: String, body: JSON? = nil, timeoutSeconds: Int = 180) throws -> (
        status: Int, body: JSON?, raw: [UInt8]
    ) {
        var request = CurlRequest(
            method: method, url: base + path, headers: ["X-Api-Key: \(key)", "Accept: application/json", "Expect:"],
            body: body?.bytes ?? (method == "GET" ? nil : Array("{}".utf8)),
            limits: TransferLimits(totalTimeoutMilliseconds: timeoutSeconds * 1000, maximumBytes: 64 << 20))
        if request.body != nil { request.headers.append("Content-Type: application/json") }
        request.caFile = caFile
        request.insecure = insecure
        let response: CurlResponse
        do {
            response = try curl.perform(request)
        } catch .transport(code: 60, _) where fallBackToSystemCAs {
            // CURLE_PEER_FAILED_VERIFICATION: not the stack's own certificate. A new handle, as
            // CURLOPT_CAINFO stays set on the old one.
            fallBackToSystemCAs = false
            caFile = nil
            curl = CurlEasy()
            return try send(method, path, body: body, timeoutSeconds: timeoutSeconds)
        } catch .transport(code: 60, let message) where caFile == nil && !insecure {
            throw Failure(
                "cannot reach the API at \(base): its certificate is not trusted (\(message)); on the stack's host pass "
                    + "--data-dir or set PEON_DATA_DIR to its data folder (an absolute path), else --cacert FILE",
                code: ExitCodes.unreachable)
        } catch {
            throw Failure("cannot reach the API at \(base): \(error)", code: ExitCodes.unreachable)
        }
        return (response.status, try? JSON.parse(response.body), response.body)
    }

    /// A call that must succeed (2xx); anything else is a `Failure` with the API's message.
    func expect(_ method: String, _ path: String, body: JSON? = nil, unsupported: String? = nil) throws -> (
        status: Int, body: JSON?, raw: [UInt8]
    ) {
        let answer = try send(method, path, body: body)
        if let unsupported, answer.status == 404 || answer.status == 405,
            answer.body?["code"] == "route.not_found" || answer.body?["code"] == "action.unknown"
                || answer.body?["code"] == "method.not_allowed"
        {
            throw Failure("\(unsupported) is not supported by this server (its API has no such route)", code: ExitCodes.unsupported)
        }
        guard (200..<300).contains(answer.status) else {
            if json, answer.body != nil { ProcessEnvironment.writeOut(String(decoding: answer.raw, as: UTF8.self) + "\n") }
            throw Self.failure(answer.status, answer.body)
        }
        return answer
    }

    static func failure(_ status: Int, _ body: JSON?) -> Failure {
        let message = body?["info"]?.stringValue ?? body?["error"]?.stringValue ?? "HTTP \(status)"
        let code = body?["code"]?.stringValue.map { " [\($0)]" } ?? ""
        return Failure("\(message)\(code) (HTTP \(status))", code: ExitCodes.refused)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
