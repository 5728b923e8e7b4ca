public import PeonDocker
public import PeonPlatform

extension DockerPlatform {
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
