#if canImport(Glibc)
    import Glibc
#endif

/// A plain pthread for blocking work (curl transfers, SQLite, waits) that must stay off Swift's
/// cooperative pool, which has only as many threads as cores.
public final class ThreadHandle: Sendable {
    private final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private let handle: pthread_t

    public init(_ body: @escaping @Sendable () -> Void) {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(
            &t, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box)
        handle = t
    }

    public func join() { pthread_join(handle, nil) }

    /// Starts a thread nobody joins: its resources go back when it ends.
    public static func detach(_ body: @escaping @Sendable () -> Void) {
        pthread_detach(ThreadHandle(body).handle)
    }
}
