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

    /// Writes text to stdout unbuffered, no newline added (a progress bar redraws with `\r`).
    public static func writeOut(_ text: String) { writeAll(1, text) }

    /// Writes text to stderr unbuffered.
    public static func writeError(_ text: String) { writeAll(2, text) }

    /// Whether the descriptor is a terminal (progress bars then, plain lines otherwise).
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// The home directory, from `HOME`.
    public static var home: String? { getenv("HOME").map { String(cString: $0) } }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
