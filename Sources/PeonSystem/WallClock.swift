#if canImport(Glibc)
    import Glibc
#endif

/// Wall-clock time, in the one format Peon writes (audit rows, logs): ISO-8601 UTC.
public enum WallClock {
    public static func now() -> Int64 { Int64(time(nil)) }

    /// Unix milliseconds (log lines carry the platform's timestamps in these).
    public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    public static func iso8601(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
