import Logging
import PeonCore
import PeonPlatform
import PeonStore
import PeonSystem

/// Joinable, not just running: between a server's start and the first answer of its plan's probe
/// (`ReadyCheck`) the server is `starting`; this thread asks, records the answer and tells the
/// webhooks (`ready`), or reports a start that outlived the plan's `start_timeout` (`start_failed`,
/// the probe still asked now and then: a slow first install may still come up).
struct ReadinessWatcher {
    let store: Store
    let platform: any ServerPlatform
    let runner: JobRunner
    let logger: Logger
    /// When each unready server is asked again (monotonic seconds).
    var due: [String: Double] = [:]

    /// One pass over the servers started and not yet ready.
    mutating func pass(stopping: () -> Bool) throws {
        let unready = try store.read { tx in try tx.unready() }
        let now = Monotonic.seconds()
        let uids = Set(unready.map(\.uid))
        due = due.filter { uids.contains($0.key) }
        // Each game's plan parsed once a pass, not once a server.
        var plans: [GameUID: Plan?] = [:]
        for state in unready where !stopping() {
            guard let startedAt = state.startedAt, due[state.uid].map({ now >= $0 }) ?? true,
                let uid = try? ServerUID(validating: state.uid),
                let server = try store.read({ tx in try tx.server(uid) }),
                server.observedState == "running", server.desiredState == "running"
            else { continue }
            if plans[uid.game] == nil { plans[uid.game] = .some(try? runner.plan(uid.game)) }
            guard let plan = plans[uid.game] ?? nil else { continue }
            let ready = probe(plan, server: server, since: startedAt)
            let at = WallClock.milliseconds()
            let age = Double(at - startedAt) / 1000
            if ready {
                try store.write { tx in
                    try tx.setReady(server: state.uid, startedAt: startedAt, at: at)
                    try tx.emitEvent(.ready, server: state.uid, detail: ["seconds": .number((age * 10).rounded() / 10)], now: at / 1000)
                }
                logger.info("server ready", metadata: ["server.uid": "\(uid)", "seconds": "\(age)", "probe": "\(plan.ready.kind)"])
                handOff(server)
                due[state.uid] = nil
                continue
            }
            if !state.startFailed, age > Double(plan.ready.startTimeoutSeconds) {
                try store.write { tx in
                    try tx.setStartFailed(server: state.uid, startedAt: startedAt)
                    try tx.emitEvent(
                        .startFailed, server: state.uid, detail: ["start_timeout": .int(plan.ready.startTimeoutSeconds)], now: at / 1000)
                }
                logger.warning(
                    "server not ready within its start_timeout",
                    metadata: ["server.uid": "\(uid)", "seconds": "\(plan.ready.startTimeoutSeconds)", "probe": "\(plan.ready.kind)"])
            }
            // Often while a game loads (a wake waits on this), less after a minute, rarely once failed.
            due[state.uid] = Monotonic.seconds() + (state.startFailed ? 30 : age < 60 ? 0.25 : 2)
        }
    }

    /// A woken server is ready: the connections its node held while it slept go to the game.
    func handOff(_ server: ServerRecord) {
        guard (try? store.read({ tx in try tx.sleepState(server: server.uid.description) }))??.wakeOnConnect == true,
            let id = server.containerID, let running = try? platform.runningContainer(ServerRef(id))
        else { return }
        do {
            try running.channel.handoff(server.uid, container: running.container)
        } catch {
            logger.warning("held connections not handed to the game", metadata: ["server.uid": "\(server.uid)", "error": "\(error)"])
        }
    }

    /// Whether the game answers its plan's probe now.
    func probe(_ plan: Plan, server: ServerRecord, since startedAt: Int64) -> Bool {
        switch plan.ready.probe {
        case .running:
            return true
        case .log(let line):
            // The log collector stores the game's output with its arrival time.
            return
                (try? store.read { tx in try tx.logsContain(server: server.uid.description, text: line, sinceMilliseconds: startedAt - 1000)
                })
                ?? false
        case .rcon:
            guard let rcon = plan.rcon, let id = server.containerID, let running = try? platform.runningContainer(ServerRef(id)) else {
                return false
            }
            // A login accepted and a command answered: the game's console is up.
            return (try? runner.rconCommand(server, plan: plan, rcon: rcon, command: "", on: (running.channel, running.container))) != nil
        case .network(let kind, _):
            // The container's own port (published under the same number).
            guard let port = plan.ready.port(in: server.ports)?.port, let id = server.containerID,
                let running = try? platform.runningContainer(ServerRef(id))
            else { return false }
            return (try? running.channel.probe(kind, container: running.container, port: port)) ?? false
        }
    }
}

extension Scheduler {
    /// The readiness watcher's thread: a pass every quarter second.
    func readinessLoop() {
        while !Self.stopping {
            do {
                let store = try Store(path: configuration.databasePath)
                let platform = try makePlatform()
                let runner = JobRunner(store: store, platform: platform, configuration: configuration, logger: logger, clock: clock)
                var watcher = ReadinessWatcher(store: store, platform: platform, runner: runner, logger: logger)
                while !Self.stopping {
                    try watcher.pass(stopping: { Self.stopping })
                    Monotonic.sleep(0.25)
                }
            } catch {
                logger.warning("readiness watcher failed, retrying", metadata: ["error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }
}
