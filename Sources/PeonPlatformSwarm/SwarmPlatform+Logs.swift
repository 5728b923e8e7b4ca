import PeonDocker
import PeonJSON
public import PeonPlatform
import PeonSystem

extension SwarmPlatform {
    /// The output of the service's current task, from the manager's service log stream (Swarm
    /// gathers it from the task's node), demultiplexed, with each line's timestamp. The stream
    /// outlives a task, so it is ended when the task stops running (checked about once a second
    /// on a connection of its own). Lines as `LogFrame.timestampedLines` makes them (hostile input).
    public func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws {
        let tasks = try engine { () throws(DockerError) in try docker.listTasks(filters: [("service", [id])]) }
        guard let current = tasks.max(by: { Self.taskOrder($0) < Self.taskOrder($1) }), Self.state(current) == .running,
            let taskID = current["ID"]?.stringValue,
            let started = current["Status"]?["Timestamp"]?.stringValue.flatMap({ DockerTime.milliseconds($0[...]) })
        else { return }
        // The service's stream holds every task's lines: this run's are those after the previous
        // task ended (its last state change), or all of them for a first run.
        let previousEnd =
            tasks.filter { $0["ID"]?.stringValue != taskID }.compactMap {
                $0["Status"]?["Timestamp"]?.stringValue.flatMap { DockerTime.milliseconds($0[...]) }
            }.max() ?? 0
        let since = max(sinceMilliseconds, previousEnd < started ? previousEnd + 1 : 0)
        let watcher = try DockerClient(socketPath: docker.socketPath)
        var lastCheck = Monotonic.seconds()
        var running = true
        let stillRunning: () -> Bool = {
            guard keepGoing(), running else { return false }
            if Monotonic.seconds() - lastCheck >= 1 {
                lastCheck = Monotonic.seconds()
                // A manager that does not answer for a moment does not end the stream; no task
                // at all does (a scaled-down service's tasks are removed once they stopped).
                if let tasks = try? watcher.listTasks(filters: [("service", [id])]) {
                    let newest = tasks.max { Self.taskOrder($0) < Self.taskOrder($1) }
                    running = newest.map { $0["ID"]?.stringValue == taskID && Self.state($0) == .running } ?? false
                }
            }
            return running
        }
        try docker.followServiceLogs(id, since: DockerTime.since(milliseconds: since), keepGoing: stillRunning) { frames in
            let lines = LogFrame.timestampedLines(frames, fallback: started).map {
                PlatformLogLine(at: $0.at, stream: $0.stream, text: $0.text)
            }
            if !lines.isEmpty { handler(started, lines) }
            return stillRunning()
        }
    }
}
