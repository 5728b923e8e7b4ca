public import PeonCore
public import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Copies a plan's `actions/` files into a server's `actions/` folder, replacing files of the same
/// name and keeping every other file (the user's own scripts, the runtime's `.update`).
///
/// The folder is mounted into the game's container, so whatever runs there may have planted
/// links in it. Every step goes through folder descriptors opened with `O_NOFOLLOW`, and each file
/// is written under a temporary name and renamed over the old one, so a link (symbolic or hard) is
/// replaced, never written through. New files and folders belong to the game's user.
public struct ActionsInstaller {
    public var owner: (uid: UInt32, gid: UInt32) = (1000, 1000)

    public init() {}

    public func install(_ files: [PlanFile], into actionsDir: String) throws(FileError) {
        try Files.makeDirectories(actionsDir)
        let root = open(actionsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw FileError(path: actionsDir, reason: "not a folder: \(String(cString: strerror(errno)))") }
        defer { close(root) }
        for file in files {
            let parts = file.path.split(separator: "/").map(String.init)
            guard PlanActions.isSafePath(file.path), let name = parts.last else { continue }
            var dir = root
            var opened: [Int32] = []
            defer { for fd in opened { close(fd) } }
            for part in parts.dropLast() {
                dir = try subfolder(part, in: dir, path: actionsDir + "/" + file.path)
                opened.append(dir)
            }
            try write(file, name: name, in: dir, path: actionsDir + "/" + file.path)
        }
    }

    /// Opens (making it when missing, replacing a file or link in its place) a folder in `dir`.
    private func subfolder(_ name: String, in dir: Int32, path: String) throws(FileError) -> Int32 {
        var fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { return fd }
        if errno != ENOENT { _ = unlinkat(dir, name, 0) }
        guard mkdirat(dir, name, 0o755) == 0 || errno == EEXIST else { throw failure(path) }
        fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure(path) }
        try own(fd, path: path)
        return fd
    }

    private func write(_ file: PlanFile, name: String, in dir: Int32, path: String) throws(FileError) {
        let temporary = Files.temporaryName(for: name)
        let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(path) }
        var ok = false
        defer {
            close(fd)
            if !ok { _ = unlinkat(dir, temporary, 0) }
        }
        var offset = 0
        while offset < file.bytes.count {
            let n = file.bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path)
            }
            offset += n
        }
        guard fchmod(fd, file.executable ? 0o755 : 0o644) == 0 else { throw failure(path) }
        try own(fd, path: path)
        guard renameat(dir, temporary, dir, name) == 0 else { throw failure(path) }
        ok = true
    }

    /// Gives a file to the game's user; only root can, and only root needs to.
    private func own(_ fd: Int32, path: String) throws(FileError) {
        guard geteuid() == 0 else { return }
        guard fchown(fd, owner.uid, owner.gid) == 0 else { throw failure(path) }
    }

    private func failure(_ path: String) -> FileError { FileError(path: path, reason: String(cString: strerror(errno))) }
}
