#if canImport(Glibc)
    import Glibc
#endif

/// Why root could not be dropped.
public struct PrivilegeError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A local account a root process hands its work to.
public struct Account: Sendable, Equatable {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32

    public init?(named name: String) {
        guard let entry = getpwnam(name) else { return nil }
        self.name = name
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
    }
}

/// Dropping root, once, before the workers are forked (after the socket is bound).
public enum Privileges {
    public static var isRoot: Bool { geteuid() == 0 }

    /// Becomes `account` for good: its primary group only, then its uid; checks root cannot be regained.
    public static func drop(to account: Account) throws(PrivilegeError) {
        var groups = [gid_t(account.gid)]
        guard setgroups(1, &groups) == 0, setgid(account.gid) == 0, setuid(account.uid) == 0 else {
            throw PrivilegeError(description: "cannot become \(account.name): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0, geteuid() == account.uid, getegid() == account.gid else {
            throw PrivilegeError(description: "root could be regained after becoming \(account.name)")
        }
    }

    /// The first directory on the way to `path` that `account` cannot search, or nil when it gets through
    /// (the data dir under a private home directory would lock the workers out).
    public static func blockedDirectory(_ path: String, for account: Account) -> String? {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        let parts = String(cString: resolved).split(separator: "/")
        let directories = ["/"] + parts.indices.map { "/" + parts[...$0].joined(separator: "/") }
        for current in directories {
            var st = stat()
            guard stat(current, &st) == 0 else { return current }
            let mode = st.st_mode
            let searchable =
                account.uid == 0 || (st.st_uid == account.uid && mode & 0o100 != 0) || (st.st_gid == account.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
            if !searchable { return current }
        }
        return nil
    }
}
