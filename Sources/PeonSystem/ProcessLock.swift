#if canImport(Glibc)
    import Glibc
#endif

/// An advisory lock (`flock`) a process holds for its whole life, so other processes see at once
/// whether it runs: the kernel drops the lock when the process dies, however it dies (a heartbeat
/// only goes stale seconds later).
public enum ProcessLock {
    /// Tries to take the lock at `path`; on success the descriptor stays open, and the lock held,
    /// until the process exits. Nil while another process holds it.
    public static func tryHold(_ path: String) throws(FileError) -> Int32? {
        // Read-only is enough for flock, and opens a lock file another user made.
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw .errno(path) }
        // Readable by the API workers, whatever user they run as.
        fchmod(fd, 0o644)
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return fd }
        let failure = errno
        close(fd)
        guard failure == EWOULDBLOCK || failure == EINTR else { throw FileError(path: path, reason: String(cString: strerror(failure))) }
        return nil
    }

    /// Whether some process holds the lock at `path` (false when the file does not exist).
    public static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 { return false }
        return errno == EWOULDBLOCK
    }
}
