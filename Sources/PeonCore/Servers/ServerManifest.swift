public import PeonJSON

/// A server folder's `peon-server.json`, read back by `PUT /servers` (import).
///
/// The file sits in a folder a game server or an operator may have written, so it is parsed with
/// the same checked types as a request: settings against the plan, limits in range, ports 1-65535
/// with the plan's port names. Anything else refuses the whole manifest.
public struct ServerManifest: Sendable {
    public let description: String
    public let settings: [(String, String)]
    /// Validated with `ResourceLimits.parse`, kept as given (as the servers table stores it).
    public let limits: JSON
    public let ports: [PortSpec]

    public init(document: JSON, uid: ServerUID, plan: Plan) throws(DomainError) {
        guard case .object = document, document["uid"]?.stringValue == uid.description else {
            throw .invalid(field: "uid", reason: "the manifest is not an object naming \(uid)")
        }
        let text = document["description"] ?? .string("")
        guard let description = text.stringValue, description.utf8.count <= 500, !description.utf8.contains(0) else {
            throw .invalid(field: "description", reason: "description must be a string of at most 500 bytes")
        }
        self.description = description
        guard let given = (document["settings"] ?? .object([])).objectValue,
            given.allSatisfy({ $0.1.stringValue != nil })
        else { throw .invalid(field: "settings", reason: "settings must be an object of strings") }
        settings = try ServerSettings.resolve(plan: plan, request: .object(given))
        let limits = document["limits"].flatMap { $0.isNull ? nil : $0 } ?? .object([])
        _ = try ResourceLimits.parse(limits, over: plan.limits)
        self.limits = limits
        let names = Set(plan.portGroups.joined().map(\.name))
        guard let entries = (document["ports"] ?? .array([])).arrayValue, entries.count <= 64 else {
            throw .invalid(field: "ports", reason: "ports must be a list of at most 64 entries")
        }
        ports = try entries.map { entry throws(DomainError) in
            guard let name = entry["name"]?.stringValue, names.contains(name), let port = CheckedNumber.int(entry["port"], in: 1...65535),
                let proto = PortSpec.Proto(rawValue: entry["proto"]?.stringValue ?? "")
            else {
                throw .invalid(field: "ports", reason: "each port needs a name of the plan, a port 1-65535 and a proto tcp, udp or both")
            }
            return PortSpec(name: name, port: port, proto: proto)
        }
    }
}
