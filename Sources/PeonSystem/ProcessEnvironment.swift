#if canImport(Glibc)
    import Glibc
#endif

/// Reads the named environment variables once, into a dictionary the configuration parses.
public enum ProcessEnvironment {
    public static func read(_ keys: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for key in keys {
            if let value = getenv(key) { result[key] = String(cString: value) }
        }
        return result
    }

    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Writes a line to stdout unbuffered (what a person must see, e.g. a generated key).
    public static func printLine(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}
