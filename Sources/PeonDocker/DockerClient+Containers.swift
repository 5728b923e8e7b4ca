import PeonCurl
public import PeonJSON

extension DockerClient {
    /// Creates a container from an Engine API `ContainerConfig` (with `HostConfig`); returns its id.
    public func createContainer(name: String, config: JSON) throws(DockerError) -> String {
        let answer = try json("POST", "/containers/create", query: [("name", name)], body: config)
        guard let id = answer["Id"]?.stringValue else { throw .badResponse("create returned no Id") }
        return id
    }

    /// Starts a container; one already running is not an error (304).
    public func startContainer(_ id: String) throws(DockerError) {
        try call("POST", "/containers/\(DockerClient.escape(id))/start")
    }

    /// Stops with SIGTERM, then SIGKILL after `timeoutSeconds`; one already stopped is not an error.
    public func stopContainer(_ id: String, timeoutSeconds: Int) throws(DockerError) {
        try call(
            "POST", "/containers/\(DockerClient.escape(id))/stop", query: [("t", "\(timeoutSeconds)")],
            timeoutMilliseconds: (timeoutSeconds + 30) * 1000)
    }

    public func restartContainer(_ id: String, timeoutSeconds: Int) throws(DockerError) {
        try call(
            "POST", "/containers/\(DockerClient.escape(id))/restart", query: [("t", "\(timeoutSeconds)")],
            timeoutMilliseconds: (timeoutSeconds + 60) * 1000)
    }

    public func killContainer(_ id: String, signal: String = "SIGKILL") throws(DockerError) {
        try call("POST", "/containers/\(DockerClient.escape(id))/kill", query: [("signal", signal)])
    }

    /// Removes a container (and its anonymous volumes); `force` kills a running one first.
    public func removeContainer(_ id: String, force: Bool = false) throws(DockerError) {
        try call("DELETE", "/containers/\(DockerClient.escape(id))", query: [("force", force ? "1" : "0"), ("v", "1")])
    }

    /// `GET /containers/{id}/json`: `State.Status`, `State.ExitCode`, `State.OOMKilled`, ...
    public func inspectContainer(_ id: String) throws(DockerError) -> JSON {
        try json("GET", "/containers/\(DockerClient.escape(id))/json")
    }

    /// Containers carrying every given label (`key=value` or `key`), running or not.
    public func listContainers(labels: [String], all: Bool = true) throws(DockerError) -> [JSON] {
        let answer = try json("GET", "/containers/json", query: [("all", all ? "1" : "0"), ("filters", DockerClient.labelFilter(labels))])
        guard let list = answer.arrayValue else { throw .badResponse("container list is not a list") }
        return list
    }

    /// One stats sample without streaming (`one-shot` skips the second sample, API 1.41+).
    public func containerStats(_ id: String) throws(DockerError) -> JSON {
        try json("GET", "/containers/\(DockerClient.escape(id))/stats", query: [("stream", "0"), ("one-shot", "1")])
    }

    /// Blocks until the container is not running (or `condition`), returning its exit code.
    public func waitContainer(_ id: String, condition: String = "not-running", timeoutSeconds: Int = 60) throws(DockerError) -> Int {
        let answer = try json(
            "POST", "/containers/\(DockerClient.escape(id))/wait", query: [("condition", condition)],
            timeoutMilliseconds: timeoutSeconds * 1000)
        guard case .number(let code) = answer["StatusCode"], let status = Int32(exactly: code) else {
            throw .badResponse("wait returned no StatusCode")
        }
        return Int(status)
    }

    /// The last `tail` lines of stdout and stderr (demultiplexed; the container must not use a TTY).
    public func containerLogs(_ id: String, tail: Int = 200) throws(DockerError) -> [LogFrame] {
        let response = try call(
            "GET", "/containers/\(DockerClient.escape(id))/logs",
            query: [("stdout", "1"), ("stderr", "1"), ("tail", "\(tail)")], maximumBytes: 8 << 20)
        var decoder = LogFrameDecoder()
        return decoder.feed(response.body)
    }
}

extension DockerClient {
    /// Follows a container's stdout and stderr with Docker's timestamps (`follow=1`), from `since`
    /// (`seconds.nanoseconds`), until the container stops or `keepGoing` turns false; `onFrames`
    /// gets the frames of each chunk as they arrive.
    public func followLogs(
        _ id: String, since: String, keepGoing: @escaping () -> Bool, onFrames: ([LogFrame]) -> Void
    ) throws(DockerError) {
        var decoder = LogFrameDecoder()
        try stream(
            "GET", "/containers/\(DockerClient.escape(id))/logs",
            query: [("follow", "1"), ("stdout", "1"), ("stderr", "1"), ("timestamps", "1"), ("since", since)], keepGoing: keepGoing
        ) { chunk in
            let frames = decoder.feed(chunk)
            if !frames.isEmpty { onFrames(frames) }
            // A frame larger than any log line Docker writes (16 KiB) means a broken stream.
            return decoder.pending <= 1 << 20
        }
    }
}

extension DockerClient {
    /// Writes `bytes` to a container's stdin (`attach` with `stdin=1`, upgraded to a raw stream).
    /// The container must have been created with `OpenStdin`; its stdin stays open afterwards.
    public func sendInput(_ id: String, _ bytes: [UInt8]) throws(DockerError) {
        let path = "/v\(apiVersion)/containers/\(DockerClient.escape(id))/attach?stream=1&stdin=1"
        let head = "POST \(path) HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        let status: Int
        do {
            // A connection of its own: an upgraded one is never handed back to the shared handle.
            status = try CurlEasy().upgradeAndSend(url: "http://docker/", unixSocket: socketPath, head: Array(head.utf8), payload: bytes)
        } catch {
            throw .transport(error)
        }
        switch status {
        case 101, 200: return
        case 404: throw .notFound("container \(id)")
        case 409: throw .conflict("container \(id) is not running")
        default: throw .engine(status: status, message: "attach answered \(status)")
        }
    }
}
