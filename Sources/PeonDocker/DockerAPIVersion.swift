/// Engine API version negotiation: speak `min(our newest, the engine's newest)`, refusing when that
/// is below what either side accepts. Debian 12's engine stops at 1.41; Docker 29 starts at 1.44.
public enum DockerAPIVersion {
    public static let oldestSupported = "1.41"
    public static let newestSupported = "1.47"

    /// The version to use, or nil when the ranges do not meet.
    public static func negotiate(engineNewest: String, engineOldest: String?) -> String? {
        guard let newest = parse(engineNewest) else { return nil }
        let chosen = min(newest, parse(newestSupported)!)
        let floor = max(parse(oldestSupported)!, engineOldest.flatMap(parse) ?? 0)
        guard chosen >= floor else { return nil }
        return "\(chosen / 1000).\(chosen % 1000)"
    }

    /// `1.41` as 1041, so versions compare as integers.
    static func parse(_ text: String) -> Int? {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]), (0..<1000).contains(minor) else { return nil }
        return major * 1000 + minor
    }
}
