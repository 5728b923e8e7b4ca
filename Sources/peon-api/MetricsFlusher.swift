import Logging
import PeonCore
import PeonStore
import PeonSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A worker process's metrics thread: once a second it adds the process's counters to SQLite
/// and reports its thread counts, so `/metrics` (answered by any process) sees every process.
/// On `stop()` it flushes a last time and removes the process's row.
final class MetricsFlusher: Sendable {
    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    private let stopping = Flag()
    private let thread: Mutex<ThreadHandle?> = Mutex(nil)

    init(configuration: Configuration, metrics: MetricsRecorder, logger: Logger, interval: Double = 1) {
        let pid = Int64(getpid())
        let threads = configuration.workerThreads
        let handle = ThreadHandle { [stopping] in
            guard let store = try? Store(path: configuration.databasePath) else {
                return logger.warning("metrics thread: cannot open the database")
            }
            var failing = false
            func flush(threads: Int) {
                do {
                    try store.write { tx in
                        let now = WallClock.now()
                        try metrics.flush(into: tx, now: now)
                        try tx.reportAPIProcess(pid: pid, threads: threads, busy: metrics.busy, now: now)
                    }
                    failing = false
                } catch {
                    if !failing { logger.warning("metrics not written", metadata: ["error": "\(error)"]) }
                    failing = true
                }
            }
            while !stopping.isSet {
                flush(threads: threads)
                // Short naps, so stopping is prompt.
                var slept = 0.0
                while slept < interval, !stopping.isSet {
                    Monotonic.sleep(0.1)
                    slept += 0.1
                }
            }
            flush(threads: 0)
        }
        thread.withLock { $0 = handle }
    }

    func stop() {
        stopping.value.store(true, ordering: .relaxed)
        thread.withLock { $0?.join() }
    }
}
