public import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Process signal handling. Handlers only set flags: everything else happens in the loops that read them.
public enum Signals {
    /// Set by SIGTERM/SIGINT in a worker; its accept loop sees it within one `SO_RCVTIMEO` tick.
    public static let shutdownRequested = Atomic<Bool>(false)
    /// Set by SIGTERM/SIGINT in the supervisor.
    public static let stopRequested = Atomic<Bool>(false)

    /// Worker handlers: `SA_RESTART`, so a request's reads and writes are never cut by the signal
    /// (`accept()` on a socket with a receive timeout returns anyway: Linux never restarts it).
    public static func installWorkerHandlers() {
        install(restart: true) { _ in Signals.shutdownRequested.store(true, ordering: .relaxed) }
    }

    /// Supervisor handlers: no `SA_RESTART`, so its blocking `waitpid` returns EINTR.
    public static func installSupervisorHandlers() {
        install(restart: false) { _ in Signals.stopRequested.store(true, ordering: .relaxed) }
    }

    private static func install(restart: Bool, _ handler: @convention(c) (Int32) -> Void) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        action.sa_flags = restart ? Int32(SA_RESTART) : 0
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
        signal(SIGPIPE, SIG_IGN)
    }
}
