/// A node of a multi-node platform in Peon's terms: what the platform reports, and what the
/// scheduler mirrors into SQLite for `GET /api/v1/nodes`.
public struct ClusterNode: Sendable, Equatable {
    public let name: String
    public let address: String
    /// `ready`, `down`, `unknown`.
    public let state: String
    /// `active`, `pause`, `drain`.
    public let availability: String
    public let memoryBytes: Int64
    public let nanoCPUs: Int64
    public let labels: [String: String]

    public init(
        name: String, address: String, state: String, availability: String, memoryBytes: Int64, nanoCPUs: Int64, labels: [String: String]
    ) {
        self.name = name
        self.address = address
        self.state = state
        self.availability = availability
        self.memoryBytes = memoryBytes
        self.nanoCPUs = nanoCPUs
        self.labels = labels
    }
}
