import PeonDocker
import PeonJSON
public import PeonPlatform
import PeonSystem

extension SwarmPlatform: LogFollowing {
    /// The output of the service's current task, from the manager's service log stream (Swarm
    /// gathers it from the task's node), demultiplexed, with each line's timestamp. The stream
    /// outlives a task, so it is ended when the task stops running (checked about once a second
    /// on a connection of its own). A game's output is hostile input: lines are cut at 4 KiB,
    /// control characters (but tabs) dropped, invalid UTF-8 replaced.
    public func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws {
        let tasks = try engine { () throws(DockerError) in try docker.listTasks(filters: [("service", [id])]) }
        guard let current = tasks.max(by: { Self.taskOrder($0) < Self.taskOrder($1) }), Self.state(current) == .running,
            let taskID = current["ID"]?.stringValue,
            let started = current["Status"]?["Timestamp"]?.stringValue.flatMap({ DockerTime.milliseconds($0[...]) })
        else { return }
        let run = started
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
            var lines: [PlatformLogLine] = []
            for frame in frames where frame.stream != .stdin {
                // `timestamps=1`: "<RFC 3339 nanoseconds> <text>".
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
            return stillRunning()
        }
    }

    static func cleanLine(_ bytes: ArraySlice<UInt8>) -> String {
        let kept = bytes.prefix(4096).filter { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) }
        return String(decoding: kept, as: UTF8.self)
    }
}
