public import PeonJSON

extension DockerClient {
    /// The image's metadata, or nil when the engine does not have it.
    public func inspectImage(_ reference: String) throws(DockerError) -> JSON? {
        do {
            return try json("GET", "/images/\(DockerClient.escapePath(reference))/json")
        } catch .notFound {
            return nil
        }
    }

    /// Pulls `image:tag`, reporting each progress object; a failure inside the stream throws.
    public func pullImage(_ image: String, tag: String = "latest", progress: (JSON) -> Void = { _ in }) throws(DockerError) {
        try progressStream("/images/create", query: [("fromImage", image), ("tag", tag)], progress: progress)
    }

    /// Pushes `image:tag` to the registry its name starts with (no credentials: a registry of the
    /// cluster's own network), reporting each progress object; a failure inside the stream throws.
    public func pushImage(_ image: String, tag: String, progress: (JSON) -> Void = { _ in }) throws(DockerError) {
        try progressStream(
            "/images/\(DockerClient.escapePath(image))/push", query: [("tag", tag)], headers: [Self.anonymous], progress: progress)
    }

    /// A POST whose answer is the engine's newline-delimited progress objects; one with `error`
    /// throws once the stream ended.
    func progressStream(_ path: String, query: [(String, String)], headers: [String] = [], progress: (JSON) -> Void) throws(DockerError) {
        var lines = LineBuffer()
        var failure: String?
        try stream("POST", path, query: query, headers: headers, keepGoing: { true }) { chunk in
            for line in lines.feed(chunk) {
                guard let event = try? JSON.parse(line) else { continue }
                if let error = event["error"]?.stringValue { failure = error }
                progress(event)
            }
            return true
        }
        if let failure { throw .engine(status: 500, message: failure) }
    }

    /// Whether the registry named by `reference` has it (`GET /distribution/<reference>/json`: the
    /// engine asks the registry for its manifest).
    public func registryHas(_ reference: String) throws(DockerError) -> Bool {
        do {
            try call("GET", "/distribution/\(DockerClient.escapePath(reference))/json", headers: [Self.anonymous])
            return true
        } catch .notFound {
            return false
        } catch .engine(let status, _) where status == 401 || status == 403 {
            // Registries answer an unknown repository as unauthorized.
            return false
        }
    }

    /// `X-Registry-Auth` for no credentials (base64 of `{}`).
    static let anonymous = "X-Registry-Auth: e30="

    /// A path component that may contain `/` and `:` (image references), encoded otherwise.
    static func escapePath(_ text: String) -> String {
        text.split(separator: "/", omittingEmptySubsequences: false).map { escape(String($0)).replacingColons() }.joined(separator: "/")
    }
}

extension String {
    fileprivate func replacingColons() -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: "%3A") {
            out += rest[..<r.lowerBound] + ":"
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

/// Splits a byte stream into newline-terminated lines (Docker's progress and event streams are
/// newline-delimited JSON whose chunks can end mid-object).
struct LineBuffer {
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [[UInt8]] {
        pending.append(contentsOf: chunk)
        var lines: [[UInt8]] = []
        var start = 0
        for i in pending.indices where pending[i] == 0x0A {
            if i > start { lines.append(Array(pending[start..<i])) }
            start = i + 1
        }
        pending.removeFirst(start)
        return lines
    }
}

extension DockerClient {
    /// Builds an image from a tar context (`POST /build`, the engine's own builder), reporting
    /// each line of its output; a failure inside the stream throws with the builder's message.
    public func buildImage(
        context: [UInt8], tag: String, labels: [(String, String)], buildArgs: [(String, String)], network: String? = nil,
        progress: (String) -> Void = { _ in }
    ) throws(DockerError) {
        var lines = LineBuffer()
        var failure: String?
        let query: [(String, String)] =
            [
                ("t", tag), ("rm", "1"), ("forcerm", "1"),
                ("labels", JSON.object(labels.map { ($0.0, JSON.string($0.1)) }).text),
                ("buildargs", JSON.object(buildArgs.map { ($0.0, JSON.string($0.1)) }).text),
            ] + (network.map { [("networkmode", $0)] } ?? [])
        try stream("POST", "/build", query: query, rawBody: (context, "application/x-tar"), keepGoing: { true }) { chunk in
            for line in lines.feed(chunk) {
                guard let event = try? JSON.parse(line) else { continue }
                if let error = event["error"]?.stringValue {
                    failure = error
                    progress(error)
                } else if let text = event["stream"]?.stringValue ?? event["status"]?.stringValue {
                    for part in text.split(whereSeparator: \.isNewline) where !part.allSatisfy(\.isWhitespace) { progress(String(part)) }
                }
            }
            return true
        }
        if let failure { throw .engine(status: 500, message: failure) }
    }

    /// Images carrying every label of `labels` (`GET /images/json`).
    public func listImages(labels: [String]) throws(DockerError) -> [JSON] {
        try json("GET", "/images/json", query: [("filters", Self.labelFilter(labels))]).arrayValue ?? []
    }

    /// Removes an image by id or reference; an image a container still uses answers 409.
    public func removeImage(_ reference: String) throws(DockerError) {
        try call("DELETE", "/images/\(DockerClient.escapePath(reference))")
    }
}

extension DockerClient {
    /// A local image's `Config.Env` as a dictionary (what the image says of itself, e.g. PEON's
    /// `CONTAINER_TYPE` and `VERSION`); nil when the engine does not have the image.
    public func imageEnvironment(_ reference: String) throws(DockerError) -> [String: String]? {
        guard let info = try inspectImage(reference) else { return nil }
        var env: [String: String] = [:]
        for item in info["Config"]?["Env"]?.arrayValue ?? [] {
            guard let text = item.stringValue, let eq = text.firstIndex(of: "=") else { continue }
            env[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        return env
    }
}
