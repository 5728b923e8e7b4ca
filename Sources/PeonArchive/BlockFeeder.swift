#if canImport(Glibc)
    import Glibc
#endif

/// An archive file read once, block by block, on a thread of its own: each block goes first to
/// `observe` (the caller's checksum) and then, in order, to libarchive's read callback on the
/// extracting thread. The bytes extracted are exactly the bytes observed, and the checksum costs
/// the extraction no time of its own (it runs beside the decompression).
///
/// `finish()` reads whatever libarchive left (bytes after the archive's end) through `observe`
/// too, so the checksum covers the whole file, then joins the thread.
final class BlockFeeder: @unchecked Sendable {  // mutable state only under `lock`
    static let blockSize = 256 << 10
    static let depth = 8

    private let fd: Int32
    private let observe: @Sendable (UnsafeRawBufferPointer) -> Void
    private let storage: UnsafeMutableRawPointer
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var thread = pthread_t()
    private var started = false
    // Under `lock`:
    private var lengths = [Int](repeating: 0, count: depth)
    private var produced = 0
    private var consumed = 0
    private var released = 0
    private var atEnd = false
    private var failure: Int32 = 0
    private var cancelled = false

    /// Opens `path` (no symlink followed). Nothing is read until `start()`.
    convenience init(path: String, observe: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(ArchiveError) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        self.init(owning: fd, observe: observe)
    }

    /// Reads a copy of the open descriptor `fd` (the caller keeps its own).
    convenience init(descriptor fd: Int32, observe: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws(ArchiveError) {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw .io(path: "descriptor \(fd)", reason: String(cString: strerror(errno))) }
        self.init(owning: copy, observe: observe)
    }

    private init(owning fd: Int32, observe: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.fd = fd
        self.observe = observe
        storage = .allocate(byteCount: Self.blockSize * Self.depth, alignment: 4096)
        lock = .allocate(capacity: 1)
        changed = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        // The thread holds a reference while it runs, so it has ended here; only a join is owed.
        if started, !finished { pthread_join(thread, nil) }
        close(fd)
        storage.deallocate()
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        changed.deallocate()
    }

    private var finished = false

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<BlockFeeder>.fromOpaque(raw!).takeRetainedValue().produce()
                return nil
            }, box)
        started = true
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// The feeder thread: fills free slots in order until the end of the file, an error or `cancel()`.
    private func produce() {
        while true {
            let slot: Int? = locked {
                while produced - released >= Self.depth, !cancelled { pthread_cond_wait(changed, lock) }
                return cancelled ? nil : produced % Self.depth
            }
            guard let slot else { return }
            let block = storage + slot * Self.blockSize
            var filled = 0
            var error: Int32 = 0
            while filled < Self.blockSize {
                let n = read(fd, block + filled, Self.blockSize - filled)
                if n < 0, errno == EINTR { continue }
                if n < 0 { error = errno }
                if n <= 0 { break }
                filled += n
            }
            if filled > 0 { observe(UnsafeRawBufferPointer(start: block, count: filled)) }
            let done: Bool = locked {
                if filled > 0 {
                    lengths[slot] = filled
                    produced += 1
                }
                if error != 0 { failure = error }
                if filled < Self.blockSize { atEnd = true }
                pthread_cond_broadcast(changed)
                return atEnd
            }
            if done { return }
        }
    }

    /// The next block, valid until the next call; an empty buffer at the end of the file; nil
    /// when reading failed (`failure` says why).
    func next() -> UnsafeRawBufferPointer? {
        locked {
            if consumed > released {
                released += 1
                pthread_cond_broadcast(changed)
            }
            while consumed == produced, !atEnd { pthread_cond_wait(changed, lock) }
            if consumed < produced {
                let slot = consumed % Self.depth
                consumed += 1
                return UnsafeRawBufferPointer(start: storage + slot * Self.blockSize, count: lengths[slot])
            }
            return failure == 0 ? UnsafeRawBufferPointer(start: storage, count: 0) : nil
        }
    }

    /// Why reading failed, if it did.
    var readError: String? {
        let code = locked { failure }
        return code == 0 ? nil : String(cString: strerror(code))
    }

    /// Passes the rest of the file through `observe` (libarchive may stop before the end) and
    /// joins the thread; nil when the whole file was read.
    @discardableResult
    func finish() -> String? {
        guard started, !finished else { return readError }
        while let block = next(), block.count > 0 {}
        pthread_join(thread, nil)
        finished = true
        return readError
    }

    /// Stops the thread without reading on (the extraction failed for another reason).
    func cancel() {
        guard started, !finished else { return }
        locked {
            cancelled = true
            pthread_cond_broadcast(changed)
        }
        pthread_join(thread, nil)
        finished = true
    }
}
