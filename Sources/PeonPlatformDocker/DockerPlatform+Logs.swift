public import PeonDocker
public import PeonPlatform

extension DockerPlatform: LogFollowing {
    /// Docker's log stream of the container's current run, demultiplexed, with each line's
    /// timestamp (`LogFrame.timestampedLines`, which treats the game's output as hostile).
    public func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws(DockerError) {
        let state = try docker.inspectContainer(id)["State"]
        guard state?["Running"] == .bool(true), let started = state?["StartedAt"]?.stringValue.flatMap({ DockerTime.milliseconds($0[...]) })
        else { return }
        // The run's first lines can precede its recorded start; everything after the previous
        // run finished belongs to this one (a first run has Docker's zero time: no bound).
        let previousEnd = state?["FinishedAt"]?.stringValue.flatMap { DockerTime.milliseconds($0[...]) } ?? 0
        let since = max(sinceMilliseconds, previousEnd < started ? previousEnd + 1 : 0)
        try docker.followLogs(id, since: DockerTime.since(milliseconds: since), keepGoing: keepGoing) { frames in
            let lines = LogFrame.timestampedLines(frames, fallback: started).map {
                PlatformLogLine(at: $0.at, stream: $0.stream, text: $0.text)
            }
            if !lines.isEmpty { handler(started, lines) }
        }
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
