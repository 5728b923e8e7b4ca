import Logging
import PeonCore
import PeonPlatform
import PeonStore
import PeonSystem
import Synchronization

/// Copies the output of every running server into SQLite (`server_logs`), so API workers answer
/// `GET /server/logs` and stream it without ever calling the platform.
///
/// One follower thread per running server, each with its own store connection and platform
/// session, started when the server is seen running and ending with its container's run. A
/// game's output is hostile: at most `linesPerSecond` lines a second are kept per server (a
/// marker says how many were dropped), and only the newest `keep` lines stay.
struct LogCollector: Sendable {
    let scheduler: Scheduler
    static let keep = 10_000
    static let linesPerSecond = 1_000

    private final class Following: Sendable {
        let servers = Mutex<Set<ServerUID>>([])
    }
    private let following = Following()

    init(scheduler: Scheduler) { self.scheduler = scheduler }

    func run() {
        while !Scheduler.stopping {
            do {
                let store = try Store(path: scheduler.configuration.databasePath)
                var seen: (version: String?, at: Double) = (nil, 0)
                while !Scheduler.stopping {
                    // The servers are read again when they changed (the trigger-maintained
                    // `servers.version`), and every 5 s for a follower that ended on its own.
                    let version = try store.read { tx in try tx.meta("servers.version") }
                    if version != seen.version || Monotonic.seconds() - seen.at > 5 {
                        seen = (version, Monotonic.seconds())
                        let running = try store.read { tx in try tx.servers() }.filter {
                            $0.observedState == "running" && $0.containerID != nil
                        }
                        for server in running where following.servers.withLock({ $0.insert(server.uid).inserted }) {
                            let (uid, id) = (server.uid, server.containerID!)
                            // Followers end with their container's run (or at SIGTERM): nobody joins them.
                            ThreadHandle.detach { self.follow(uid, container: id) }
                        }
                    }
                    Monotonic.sleep(0.25)
                }
            } catch {
                scheduler.logger.warning("log collector cannot read servers", metadata: ["error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }

    func follow(_ uid: ServerUID, container: String) {
        defer { _ = following.servers.withLock { $0.remove(uid) } }
        do {
            let store = try Store(path: scheduler.configuration.databasePath)
            let platform = try scheduler.makePlatform()
            let server = uid.description
            let since = try store.read { tx in try tx.tailLogs(server: server, limit: 1).last?.at } ?? 0
            var window = (second: Int64(0), count: 0, dropped: 0)
            try platform.followLogs(container, sinceMilliseconds: since + 1, keepGoing: { !Scheduler.stopping }) { session, lines in
                var kept: [LogRecord] = []
                for line in lines {
                    let second = line.at / 1000
                    if second != window.second {
                        if window.dropped > 0 {
                            kept.append(
                                LogRecord(
                                    at: line.at, session: session, stream: 2,
                                    line: "[peon] \(window.dropped) lines dropped (over \(Self.linesPerSecond)/s)"))
                        }
                        window = (second, 0, 0)
                    }
                    window.count += 1
                    guard window.count <= Self.linesPerSecond else {
                        window.dropped += 1
                        continue
                    }
                    kept.append(LogRecord(at: line.at, session: session, stream: line.stream, line: line.text))
                }
                do {
                    try store.write { tx in try tx.appendLogs(server: server, kept, keep: Self.keep) }
                } catch {
                    scheduler.logger.warning("log lines not stored", metadata: ["server.uid": "\(uid)", "error": "\(error)"])
                }
            }
        } catch {
            scheduler.logger.debug("log stream ended", metadata: ["server.uid": "\(uid)", "error": "\(error)"])
        }
    }
}
