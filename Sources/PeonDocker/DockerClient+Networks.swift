public import PeonJSON

extension DockerClient {
    /// Creates a bridge network with labels and driver options (`com.docker.network.bridge.name`);
    /// returns its id.
    public func createNetwork(name: String, labels: [(String, String)], options: [(String, String)] = []) throws(DockerError) -> String {
        let body: JSON = [
            "Name": .string(name), "Driver": "bridge", "CheckDuplicate": true,
            "Labels": .object(labels.map { ($0.0, JSON.string($0.1)) }),
            "Options": .object(options.map { ($0.0, JSON.string($0.1)) }),
        ]
        let answer = try json("POST", "/networks/create", body: body)
        guard let id = answer["Id"]?.stringValue else { throw .badResponse("network create returned no Id") }
        return id
    }

    public func removeNetwork(_ id: String) throws(DockerError) {
        try call("DELETE", "/networks/\(DockerClient.escape(id))")
    }

    public func inspectNetwork(_ id: String) throws(DockerError) -> JSON {
        try json("GET", "/networks/\(DockerClient.escape(id))")
    }

    public func listNetworks(labels: [String]) throws(DockerError) -> [JSON] {
        let answer = try json("GET", "/networks", query: [("filters", DockerClient.labelFilter(labels))])
        guard let list = answer.arrayValue else { throw .badResponse("network list is not a list") }
        return list
    }
}
