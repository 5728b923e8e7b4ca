public import PeonDocker
public import PeonPlatform

extension DockerPlatform: LogFollowing {
    /// Docker's log stream of the container's current run, demultiplexed, with each line's
    /// timestamp. A game's output is hostile input: lines are cut at 4 KiB, control characters
    /// (but tabs) dropped, invalid UTF-8 replaced.
    public func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws(DockerError) {
        let state = try docker.inspectContainer(id)["State"]
        guard state?["Running"] == .bool(true), let started = state?["StartedAt"]?.stringValue.flatMap({ DockerTime.milliseconds($0[...]) })
        else { return }
        // Milliseconds: a stop and a start can fall within one second, and the runs must differ.
        let run = started
        // The run's first lines can precede its recorded start; everything after the previous
        // run finished belongs to this one (a first run has Docker's zero time: no bound).
        let previousEnd = state?["FinishedAt"]?.stringValue.flatMap { DockerTime.milliseconds($0[...]) } ?? 0
        let since = max(sinceMilliseconds, previousEnd < started ? previousEnd + 1 : 0)
        try docker.followLogs(id, since: DockerTime.since(milliseconds: since), keepGoing: keepGoing) { frames in
            var lines: [PlatformLogLine] = []
            for frame in frames where frame.stream != .stdin {
                // `timestamps=1`: "<RFC 3339 nanoseconds> <text>"; Docker splits long lines itself.
                let payload = frame.payload[...]
                let space = payload.firstIndex(of: UInt8(ascii: " ")) ?? payload.startIndex
                let at = DockerTime.milliseconds(Substring(decoding: payload[..<space], as: UTF8.self)) ?? started
                var body = payload[(space == payload.endIndex ? space : space + 1)...]
                while let last = body.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { body.removeLast() }
                for part in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                    lines.append(PlatformLogLine(at: at, stream: Int(frame.stream.rawValue), text: Self.cleanLine(part)))
                }
            }
            if !lines.isEmpty { handler(run, lines) }
        }
    }

    static func cleanLine(_ bytes: ArraySlice<UInt8>) -> String {
        let kept = bytes.prefix(4096).filter { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) }
        return String(decoding: kept, as: UTF8.self)
    }
}

extension DockerPlatform: ConsoleInput {
    public func sendLine(_ id: String, _ line: String) throws(DockerError) {
        try docker.sendInput(id, Array((line + "\n").utf8))
    }
}

extension DockerPlatform: ServerNetwork {
    /// The container's address on its own bridge network (the one named like the container):
    /// this host reaches it directly, so RCON needs no published port.
    public func networkAddress(_ id: String) throws(DockerError) -> String? {
        let container = try docker.inspectContainer(id)
        guard container["State"]?["Running"] == .bool(true) else { return nil }
        let networks = container["NetworkSettings"]?["Networks"]?.objectValue ?? []
        let own = container["HostConfig"]?["NetworkMode"]?.stringValue
        let chosen = networks.first { $0.0 == own } ?? networks.first
        guard let address = chosen?.1["IPAddress"]?.stringValue, !address.isEmpty else { return nil }
        return address
    }
}
