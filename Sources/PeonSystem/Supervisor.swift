public import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A pre-fork supervisor: forks N workers, respawns one that dies (with back-off when it dies
/// young), and on SIGTERM/SIGINT forwards SIGTERM, waits for the workers to drain, then kills
/// stragglers. Everything a worker needs that is shared (the listening socket) must exist before
/// `run`; everything per process (database connections) must be opened inside `worker`.
public struct Supervisor {
    public var workers: Int
    /// How long in-flight requests may take to finish after SIGTERM.
    public var drainSeconds: Double
    public var logger: Logger

    public init(workers: Int, drainSeconds: Double = 5, logger: Logger) {
        self.workers = workers
        self.drainSeconds = drainSeconds
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT; returns the supervisor's exit code.
    /// - Parameter worker: the body of a worker process (slot index in, exit code out).
    public func run(_ worker: (Int) -> Int32) -> Int32 {
        Signals.installSupervisorHandlers()
        var slots: [Int32: (slot: Int, started: Double)] = [:]
        var failures = Array(repeating: 0, count: workers)

        func spawn(_ slot: Int) {
            let pid = fork()
            if pid == 0 {
                // The child handles signals as a worker; its accept loop also exits when orphaned.
                Signals.installWorkerHandlers()
                _exit(worker(slot))
            }
            if pid < 0 {
                logger.error("fork failed", metadata: ["errno": "\(errno)"])
                return
            }
            slots[pid] = (slot, Monotonic.seconds())
            logger.debug("worker started", metadata: ["worker.pid": "\(pid)", "worker.slot": "\(slot)"])
        }

        for slot in 0..<workers { spawn(slot) }

        while !Signals.stopRequested.load(ordering: .relaxed) {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 {
                if errno == EINTR { continue }
                if errno == ECHILD, slots.isEmpty { break }
                continue
            }
            guard let (slot, started) = slots.removeValue(forKey: pid) else { continue }
            if Signals.stopRequested.load(ordering: .relaxed) { break }
            let lived = Monotonic.seconds() - started
            failures[slot] = lived < 1 ? failures[slot] + 1 : 0
            let delay = failures[slot] == 0 ? 0 : min(0.05 * Double(1 << min(failures[slot], 7)), 5)
            logger.warning(
                "worker exited, respawning",
                metadata: [
                    "worker.pid": "\(pid)", "worker.status": "\(Supervisor.describe(status))", "respawn.delay_s": "\(delay)",
                ])
            if delay > 0 { Monotonic.sleep(delay) }
            if Signals.stopRequested.load(ordering: .relaxed) { break }
            spawn(slot)
        }

        logger.info("stopping workers", metadata: ["workers": "\(slots.count)"])
        for pid in slots.keys { kill(pid, SIGTERM) }
        let deadline = Monotonic.seconds() + drainSeconds
        while !slots.isEmpty, Monotonic.seconds() < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                slots.removeValue(forKey: pid)
            } else if pid < 0, errno == ECHILD {
                slots.removeAll()
            } else {
                Monotonic.sleep(0.02)
            }
        }
        for pid in slots.keys {
            logger.warning("worker did not drain in time, killing", metadata: ["worker.pid": "\(pid)"])
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        return 0
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(signal)"
    }
}

/// Monotonic time, immune to wall-clock jumps.
public enum Monotonic {
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func sleep(_ seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        nanosleep(&ts, nil)
    }
}
