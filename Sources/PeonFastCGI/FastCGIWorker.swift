internal import CFCGI
public import Logging
public import PeonHTTP
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// One FastCGI request slot. libfcgi keeps pointers into it, so it is heap-allocated and never moves.
final class FCGXRequest {
    let raw: UnsafeMutablePointer<FCGX_Request>

    init(socket: Int32) {
        raw = .allocate(capacity: 1)
        // FAIL_ACCEPT_ON_INTR: a signal ends a blocked accept at once instead of being retried inside libfcgi.
        FCGX_InitRequest(raw, socket, FCGI_FAIL_ACCEPT_ON_INTR)
    }

    deinit {
        FCGX_Free(raw, 1)
        raw.deallocate()
    }

    /// Every CGI parameter nginx sent, copied out at once (libfcgi frees them at the next accept).
    var parameters: [String: String] {
        var result: [String: String] = [:]
        guard var p = raw.pointee.envp else { return result }
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }

    func readBody(limit: Int) -> [UInt8]? {
        var body: [UInt8] = []
        var chunk = [CChar](repeating: 0, count: 16384)
        while true {
            let n = FCGX_GetStr(&chunk, Int32(chunk.count), raw.pointee.in)
            if n <= 0 { break }
            body.append(contentsOf: chunk[..<Int(n)].map { UInt8(bitPattern: $0) })
            if body.count > limit { return nil }
        }
        return body
    }

    func write(_ response: Response) {
        var head = "Status: \(response.status) \(Response.reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\n\r\n"
        var bytes = Array(head.utf8)
        bytes.append(contentsOf: response.body)
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { _ = FCGX_PutStr($0.baseAddress, Int32($0.count), raw.pointee.out) }
        }
    }
}

@available(*, unavailable)
extension FCGXRequest: Sendable {}

/// The accept loop of one worker process: one request at a time, until SIGTERM.
public enum FastCGIWorker {
    /// Bodies above this are refused here too (nginx already limits them to 1 MiB).
    public static let maximumBody = 1 << 20

    public static func serve(socket: Int32, logger: Logger, handle: (Request) -> Response) -> Int32 {
        let request = FCGXRequest(socket: socket)
        let parent = getppid()
        // Each idle accept tick (SO_RCVTIMEO) checks for SIGTERM and for a vanished supervisor.
        while !Signals.shutdownRequested.load(ordering: .relaxed), getppid() == parent {
            let rc = FCGX_Accept_r(request.raw)
            if rc < 0 {
                if rc == -EAGAIN || rc == -EINTR || rc == -EWOULDBLOCK { continue }
                logger.error("accept failed", metadata: ["errno": "\(-rc)"])
                return 1
            }
            let response: Response
            let params = request.parameters
            if let body = request.readBody(limit: maximumBody) {
                response = handle(Request(cgiParameters: params, body: body))
            } else {
                response = HTTPError(status: 413, code: "request.too_large", message: "The request body exceeds 1 MiB.").response
            }
            request.write(response)
            FCGX_Finish_r(request.raw)
        }
        return 0
    }
}

extension Request {
    /// Builds a request from nginx's FastCGI parameters. Routing uses `REQUEST_URI` (as sent,
    /// not normalized), so `..` reaches validation and is refused there instead of being resolved.
    public init(cgiParameters p: [String: String], body: [UInt8]) {
        var headers: [String: String] = [:]
        for (name, value) in p where name.hasPrefix("HTTP_") {
            headers[name.dropFirst(5).replacingOccurrences(of: "_", with: "-").lowercased()] = value
        }
        if let type = p["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        self.init(
            method: p["REQUEST_METHOD"] ?? "GET", target: p["REQUEST_URI"] ?? p["DOCUMENT_URI"] ?? "/", headers: headers,
            body: body, remoteAddress: p["REMOTE_ADDR"] ?? "", requestID: p["REQUEST_ID"] ?? "")
    }
}

extension Substring {
    fileprivate func replacingOccurrences(of a: Character, with b: Character) -> String {
        String(map { $0 == a ? b : $0 })
    }
}
