#if canImport(Glibc)
    import Glibc
#endif

/// Reads TZif files of the system tz database (`/usr/share/zoneinfo`, Debian's `tzdata`).
public enum ZoneInfo {
    public static let root = "/usr/share/zoneinfo"

    /// The bytes of zone `name`, or nil when there is no such zone.
    ///
    /// The caller validated the name (no `..`, no leading `/`). Zones may be links to other
    /// zones (`UTC` → `Etc/UTC`): the resolved path must stay inside the database, and the final
    /// read refuses symlinks, FIFOs and files over 256 KiB (`Files.read`).
    public static func read(_ name: String, root: String = root) -> [UInt8]? {
        guard !name.hasPrefix("/"), !name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        guard let real = realpath("\(root)/\(name)", nil) else { return nil }
        defer { free(real) }
        let path = String(cString: real)
        guard let rootReal = realpath(root, nil) else { return nil }
        defer { free(rootReal) }
        guard path.hasPrefix(String(cString: rootReal) + "/") else { return nil }
        return try? Files.read(path, limit: 256 * 1024)
    }
}
