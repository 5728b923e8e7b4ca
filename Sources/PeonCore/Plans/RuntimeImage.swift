/// The image a plan's servers run: for `steamcmd` and `debian` plans, Peon's runtime image built
/// from its definition files (`images/common`, `images/<runtime>`), tagged by a hash of every
/// input so an unchanged plan reuses the image it built before; for `image` plans, the plan's own
/// image as named.
public struct RuntimeImage: Sendable, Equatable {
    /// One file of the build context (Dockerfile, entry script, stand-ins).
    public struct File: Sendable, Equatable {
        public let path: String
        public let bytes: [UInt8]
        public let mode: Int

        public init(path: String, bytes: [UInt8], mode: Int) {
            self.path = path
            self.bytes = bytes
            self.mode = mode
        }
    }

    /// What the engine needs to build a runtime image; nil for `image` plans.
    public struct Build: Sendable, Equatable {
        public let files: [File]
        public let buildArgs: [Pair]
        public let labels: [Pair]
    }

    /// A key and a value (build arguments, labels), Equatable unlike a tuple.
    public struct Pair: Sendable, Equatable {
        public let key: String
        public let value: String

        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    /// Every runtime image starts from Debian 12 slim.
    public static let base = "debian:bookworm-slim"
    public static let runtimeLabel = "peon.runtime"
    public static let inputsLabel = "peon.inputs"

    /// The reference containers are created from.
    public let reference: String
    public let runtime: PlanRuntime
    public let build: Build?

    /// - Parameters:
    ///   - files: the definition files, read by the caller (no I/O here).
    ///   - baseID: the engine's id of `base`, so a new base makes new images; nil when missing.
    ///   - buildArgs: extra build arguments from the configuration (`STEAMCMD=standin` in tests).
    ///   - registry: where the cluster's nodes pull images from (`PEON_REGISTRY`): the reference is
    ///     named for it, so the tag pushed is the one the nodes pull.
    public init(
        plan: Plan, files: [File], baseID: String?, buildArgs: [Pair] = [], extraLabels: [(String, String)] = [], registry: String? = nil
    ) {
        runtime = plan.runtime
        guard plan.runtime != .image else {
            reference = plan.image
            build = nil
            return
        }
        let args = [Pair("BASE", Self.base), Pair("PACKAGES", plan.packages.joined(separator: " "))] + buildArgs
        var hash = FNV1a()
        hash.add(plan.runtime.rawValue)
        hash.add(baseID ?? Self.base)
        for file in files.sorted(by: { $0.path < $1.path }) {
            hash.add(file.path)
            hash.add("\(file.mode)")
            hash.add(file.bytes)
        }
        for arg in args {
            hash.add(arg.key)
            hash.add(arg.value)
        }
        let digest = hash.hex
        // Plans without packages share one image per runtime; a plan's packages make it its own.
        let name = "peon/runtime-\(plan.runtime.rawValue)" + (plan.packages.isEmpty ? "" : "-\(plan.gameUID.rawValue)")
        reference = (registry.map { $0 + "/" } ?? "") + "\(name):\(digest)"
        build = Build(
            files: files, buildArgs: args,
            labels: [
                Pair(ServerSpec.managedLabel, "true"), Pair(Self.runtimeLabel, plan.runtime.rawValue), Pair(Self.inputsLabel, digest),
            ] + extraLabels.map { Pair($0.0, $0.1) })
    }
}

/// 64-bit FNV-1a, with a separator between fields so `ab`+`c` and `a`+`bc` differ. Identifies build
/// inputs and container specs; not a defence against a chosen collision (inputs come from Peon's
/// own image definitions and validated plans).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        value = (value ^ 0xff) &* 0x100_0000_01b3
    }

    mutating func add(_ text: String) { add(text.utf8) }

    var hex: String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
