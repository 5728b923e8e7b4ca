public import PeonJSON

/// Swarm calls (the engine must be a manager): nodes, services, tasks, service logs.
extension DockerClient {
    /// `GET /swarm`: the cluster; fails with 503 when the engine is not a manager.
    public func swarm() throws(DockerError) -> JSON { try json("GET", "/swarm") }

    public func listNodes() throws(DockerError) -> [JSON] {
        guard let list = try json("GET", "/nodes").arrayValue else { throw .badResponse("node list is not a list") }
        return list
    }

    public func inspectNode(_ id: String) throws(DockerError) -> JSON { try json("GET", "/nodes/\(DockerClient.escape(id))") }

    /// Replaces a node's spec (labels, availability); `version` is the one read, so a concurrent
    /// change fails ("update out of sequence") and the caller reads again.
    public func updateNode(_ id: String, version: Int, spec: JSON) throws(DockerError) {
        try call("POST", "/nodes/\(DockerClient.escape(id))/update", query: [("version", "\(version)")], body: spec)
    }

    /// Creates a service; returns its id. A name in use is a conflict.
    public func createService(_ spec: JSON) throws(DockerError) -> String {
        let answer = try json("POST", "/services/create", body: spec)
        guard let id = answer["ID"]?.stringValue else { throw .badResponse("service create returned no ID") }
        return id
    }

    public func inspectService(_ id: String) throws(DockerError) -> JSON { try json("GET", "/services/\(DockerClient.escape(id))") }

    public func updateService(_ id: String, version: Int, spec: JSON) throws(DockerError) {
        try call("POST", "/services/\(DockerClient.escape(id))/update", query: [("version", "\(version)")], body: spec)
    }

    public func removeService(_ id: String) throws(DockerError) { try call("DELETE", "/services/\(DockerClient.escape(id))") }

    public func listServices(labels: [String]) throws(DockerError) -> [JSON] {
        let answer = try json("GET", "/services", query: [("filters", DockerClient.labelFilter(labels))])
        guard let list = answer.arrayValue else { throw .badResponse("service list is not a list") }
        return list
    }

    /// Tasks of some services (`filters` as the Engine API takes them, e.g. `["service": [id]]`).
    public func listTasks(filters: [(String, [String])]) throws(DockerError) -> [JSON] {
        let filter = JSON.object(filters.map { ($0.0, JSON.array($0.1.map(JSON.string))) }).text
        let answer = try json("GET", "/tasks", query: [("filters", filter)])
        guard let list = answer.arrayValue else { throw .badResponse("task list is not a list") }
        return list
    }

    /// Follows a service's stdout and stderr with timestamps (`follow=1`), from `since`
    /// (`seconds.nanoseconds`), until `keepGoing` turns false or `onFrames` returns false (Swarm
    /// gathers the lines from the task's node; the stream does not end with a task).
    public func followServiceLogs(
        _ id: String, since: String, keepGoing: @escaping () -> Bool, onFrames: ([LogFrame]) -> Bool
    ) throws(DockerError) {
        var decoder = LogFrameDecoder()
        try stream(
            "GET", "/services/\(DockerClient.escape(id))/logs",
            query: [("follow", "1"), ("stdout", "1"), ("stderr", "1"), ("timestamps", "1"), ("since", since)], keepGoing: keepGoing
        ) { chunk in
            let frames = decoder.feed(chunk)
            if !frames.isEmpty, !onFrames(frames) { return false }
            return decoder.pending <= 1 << 20
        }
    }

    /// The last lines a service's tasks wrote (Swarm gathers them from the nodes).
    public func serviceLogs(_ id: String, tail: Int = 1000) throws(DockerError) -> [LogFrame] {
        let response = try call(
            "GET", "/services/\(DockerClient.escape(id))/logs", query: [("stdout", "1"), ("stderr", "1"), ("tail", "\(tail)")],
            maximumBytes: 8 << 20)
        var decoder = LogFrameDecoder()
        return decoder.feed(response.body)
    }
}

/// Swarm secrets and configs (files the manager hands to a service's tasks; a secret's data
/// cannot be read back through the API). Both are immutable: a new content is a new name.
extension DockerClient {
    /// `kind` is `secrets` or `configs`; returns the new object's id. A name in use is a conflict.
    public func createSwarmObject(_ kind: SwarmObjectKind, name: String, data: [UInt8], labels: [(String, String)]) throws(DockerError)
        -> String
    {
        let spec: JSON = [
            "Name": .string(name), "Labels": .object(labels.map { ($0.0, JSON.string($0.1)) }),
            "Data": .string(Base64.encode(data)),
        ]
        let answer = try json("POST", "/\(kind.rawValue)/create", body: spec)
        guard let id = answer["ID"]?.stringValue else { throw .badResponse("\(kind.rawValue) create returned no ID") }
        return id
    }

    /// Secrets or configs carrying every label in `labels` (`key` or `key=value`).
    public func listSwarmObjects(_ kind: SwarmObjectKind, labels: [String]) throws(DockerError) -> [JSON] {
        let answer = try json("GET", "/\(kind.rawValue)", query: [("filters", DockerClient.labelFilter(labels))])
        guard let list = answer.arrayValue else { throw .badResponse("\(kind.rawValue) list is not a list") }
        return list
    }

    public func removeSwarmObject(_ kind: SwarmObjectKind, _ id: String) throws(DockerError) {
        try call("DELETE", "/\(kind.rawValue)/\(DockerClient.escape(id))")
    }
}

public enum SwarmObjectKind: String, Sendable {
    case secrets, configs
}
