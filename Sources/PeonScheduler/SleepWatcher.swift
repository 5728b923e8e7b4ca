import Logging
import PeonCore
import PeonPlatform
import PeonStore
import PeonSystem
import Synchronization

/// Sleep and wake: the ports of every sleeping server (`wake_on_connect`, stopped by its idle
/// stop) are held by its node (`PortHold`); this thread keeps each node's holds equal to what the
/// store says, and turns a node's wake into the server's start (`wake` webhook).
///
/// A start lets the server's ports go first (`JobRunner.releaseHeldPorts`); both happen under
/// `holds`, and this pass reads the store inside it, so a pass never takes back ports a start has
/// just let go.
struct SleepWatcher {
    let store: Store
    let platform: any ServerPlatform
    let runner: JobRunner
    let configuration: Configuration
    let logger: Logger

    /// Held from reading the sleeping servers to the node's answer, and by a start's release.
    static let holds = Mutex(())
    /// Sent to the nodes again this often even unchanged (an agent that restarted forgot them).
    static let resendSeconds = 10.0

    /// What each node was last told (by node name; "" for this host), and when.
    var sent: [String: (channel: any NodeChannel, holds: [PortHold], at: Double)] = [:]
    var failures: [ServerUID: [String]] = [:]
    /// The store's `servers.version` at the last look: the holds are worked out again only when a
    /// server changed (or every `resendSeconds`), so sleeping servers cost no reads.
    var seen: (version: String?, at: Double) = (nil, 0)

    /// One pass; answers whether anything is held (the thread then asks more often).
    mutating func pass() throws -> Bool {
        let version = try store.read { tx in try tx.meta("servers.version") }
        if version == seen.version, Monotonic.seconds() - seen.at < Self.resendSeconds {
            // Nothing changed: only wakes to collect, which a lone node's long poll does.
            guard sent.count > 1 else { return !sent.isEmpty }
            var woken: [PortHoldState.Wake] = []
            for (_, node) in sent { woken += (try? node.channel.holdState().woken) ?? [] }
            for wake in woken { try self.wake(wake) }
            return true
        }
        seen = (version, Monotonic.seconds())
        let woken = try Self.holds.withLock { _ throws -> [PortHoldState.Wake] in
            let wanted = try wantedHolds()
            var woken: [PortHoldState.Wake] = []
            for node in Set(wanted.keys).union(sent.keys) {
                let holds = wanted[node]?.holds ?? []
                guard let channel = wanted[node]?.channel ?? sent[node]?.channel else { continue }
                let now = Monotonic.seconds()
                let state: PortHoldState
                do {
                    if let last = sent[node], last.holds == holds, now - last.at < Self.resendSeconds {
                        state = try channel.holdState()
                    } else {
                        state = try channel.hold(holds)
                        sent[node] = holds.isEmpty ? nil : (channel, holds, now)
                    }
                } catch {
                    logger.warning("node cannot hold sleeping servers' ports", metadata: ["node": "\(node)", "error": "\(error)"])
                    continue
                }
                for (uid, ports) in state.failed where failures[uid] != ports {
                    logger.warning(
                        "a sleeping server's port is taken by another program",
                        metadata: ["server.uid": "\(uid)", "ports": "\(ports.joined(separator: ", "))"])
                }
                let held = Set(holds.map(\.uid))
                failures = failures.filter { entry in !held.contains(entry.key) }.merging(state.failed) { $1 }
                woken += state.woken
            }
            return woken
        }
        for wake in woken { try self.wake(wake) }
        return !sent.isEmpty
    }

    /// The holds the store asks for, by node.
    func wantedHolds() throws -> [String: (channel: any NodeChannel, holds: [PortHold])] {
        // The sleeping servers and their last counts, in one read.
        let sleeping = try store.read { tx in
            try tx.sleepingServers().compactMap { state throws(StoreError) -> (ServerRecord, PlayerState?)? in
                guard let uid = try? ServerUID(validating: state.uid), let server = try tx.server(uid) else { return nil }
                return (server, try tx.playerState(server: state.uid))
            }
        }
        var plans: [GameUID: Plan?] = [:]
        var wanted: [String: (channel: any NodeChannel, holds: [PortHold])] = [:]
        for (server, players) in sleeping {
            let uid = server.uid
            guard server.desiredState == "stopped", !["running", "restarting", "paused"].contains(server.observedState),
                !server.ports.isEmpty
            else { continue }
            if plans[uid.game] == nil { plans[uid.game] = .some(try? runner.plan(uid.game)) }
            guard let plan = plans[uid.game] ?? nil, let channel = try? platform.channel(for: uid) else { continue }
            let setting = { (key: String) in server.settings.first { $0.0 == key }?.1 }
            let rule = WakeRule(
                client: plan.ready.networkKind, ignore: configuration.wakeIgnore,
                name: setting("SERVER_NAME") ?? (server.description.isEmpty ? uid.name : server.description),
                maxPlayers: players?.maxPlayers ?? setting("MAX_PLAYERS").flatMap { Int($0) } ?? 0)
            let node = server.node ?? ""
            wanted[node, default: (channel, [])].holds.append(PortHold(uid: uid, ports: server.ports.flatMap(\.keys), rule: rule))
        }
        return wanted
    }

    /// Waits for a wake on the one node that holds ports (this host, the compose agent, a swarm
    /// with its sleepers on one node), up to `milliseconds`, outside the lock a start takes: a
    /// wake is acted on at once, not at the next pass. False when it did not wait: several nodes
    /// hold ports (they are asked at each pass instead), or none.
    func waitForWakes(milliseconds: Int) throws -> Bool {
        guard sent.count == 1, let channel = sent.first?.value.channel else { return false }
        for wake in try channel.holdState(waitMilliseconds: milliseconds).woken { try self.wake(wake) }
        return true
    }

    /// A client showed up at a sleeping server: it starts (the start lets the ports go first).
    func wake(_ wake: PortHoldState.Wake) throws {
        let now = WallClock.now()
        let woke = try store.write { tx -> Bool in
            guard try tx.sleepState(server: wake.uid.description)?.sleeping == true, var server = try tx.server(wake.uid) else {
                return false
            }
            server.desiredState = "running"
            try tx.updateServer(server, now: now)
            try tx.enqueueJob(server: wake.uid.description, .start, now: now)
            try tx.emitEvent(
                .wake, server: wake.uid.description,
                detail: ["port": .int(wake.port.port), "transport": .string(wake.port.transport.rawValue), "from": .string(wake.from)],
                now: now)
            return true
        }
        guard woke else { return }
        logger.info(
            "a client woke a sleeping server", metadata: ["server.uid": "\(wake.uid)", "port": "\(wake.port)", "from": "\(wake.from)"])
        Wakeup.notify(directory: configuration.wakeupDir)
    }
}

extension ReadyCheck {
    /// The network probe a client's first packet looks like, if the plan's probe is one.
    var networkKind: NetworkProbe? {
        if case .network(let kind, _) = probe { kind } else { nil }
    }
}

extension JobRunner {
    /// A start of a server that may sleep lets its node's hold on its ports go first, so the
    /// engine can publish them; its held connections wait for the game to be ready. Answers the
    /// ports that were held: the server's own, though a held connection still uses them.
    func releaseHeldPorts(_ uid: ServerUID) throws -> Set<PortKey> {
        guard try store.read({ tx in try tx.sleepState(server: uid.description) })?.wakeOnConnect == true else { return [] }
        return try SleepWatcher.holds.withLock { _ in try platform.channel(for: uid).release(uid) }
    }
}

extension Scheduler {
    /// The sleep watcher's thread: while one node holds ports, a pass every second around a wait
    /// for its wakes; while several do, a pass every 100 ms; else when the store changes or every 2 s.
    func sleepLoop() {
        while !Self.stopping {
            do {
                let wake = try WakeupSocket(path: "\(configuration.wakeupDir)/wake-sleep.sock")
                let store = try Store(path: configuration.databasePath)
                let platform = try makePlatform()
                let runner = JobRunner(store: store, platform: platform, configuration: configuration, logger: logger, clock: clock)
                var watcher = SleepWatcher(store: store, platform: platform, runner: runner, configuration: configuration, logger: logger)
                while !Self.stopping {
                    let holding = try watcher.pass()
                    if (try? watcher.waitForWakes(milliseconds: 1000)) != true {
                        wake.wait(timeoutMilliseconds: holding ? 100 : 2000)
                    }
                }
            } catch {
                logger.warning("sleep watcher failed, retrying", metadata: ["error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }
}
