public import PeonJSON

/// One HTTP response: status, headers, and a body, or a stream the transport runs after the
/// headers (Server-Sent Events). Made and sent on the thread that handles the request, so the
/// stream may use that thread's connections; it is not Sendable.
public struct Response {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Writes the body in pieces until it returns; the writer answers false once the client is gone.
    public var stream: ((_ write: ([UInt8]) -> Bool) -> Void)?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A streamed answer: `stream` runs after the headers are sent, with no Content-Length.
    public init(status: Int, headers: [(String, String)], stream: @escaping (_ write: ([UInt8]) -> Bool) -> Void) {
        self.status = status
        self.headers = headers
        self.body = []
        self.stream = stream
    }

    /// A JSON response; PEON's clients expect `application/json` on every answer.
    public static func json(_ value: JSON, status: Int = 200, headers: [(String, String)] = []) -> Response {
        Response(status: status, headers: [("Content-Type", "application/json")] + headers, body: value.bytes)
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var json: JSON? { try? JSON.parse(body) }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 507: "Insufficient Storage"
        default: "Status"
        }
    }
}
