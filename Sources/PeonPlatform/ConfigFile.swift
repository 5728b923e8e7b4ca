public import PeonJSON

/// One visible file of a server's `config/`, as the node read it.
public struct ConfigFile: Sendable, Equatable {
    public let name: String
    public let text: String
    /// Unchanged for a moment and while it was read: not a game's write caught halfway.
    public let settled: Bool

    public init(name: String, text: String, settled: Bool) {
        self.name = name
        self.text = text
        self.settled = settled
    }

    /// The snapshot users see (`server_config`): settled files as read; a file still being written
    /// keeps what the previous snapshot showed, and a new one waits for the next round.
    public static func snapshot(_ files: [ConfigFile], keeping previous: JSON) -> JSON {
        .object(
            files.compactMap { file in
                if file.settled { return (file.name, .string(file.text)) }
                return previous[file.name]?.stringValue.map { (file.name, .string($0)) }
            })
    }
}
