public import PeonCore
public import PeonPlatform

/// An in-memory platform: workloads, events and server files in dictionaries, no engine.
///
/// It follows the platform contract (`PlatformContract`), so scheduler logic tested on it behaves
/// the same on Docker and Swarm. `exit(_:code:oom:)` plays a game that ends on its own.
public final class FakePlatform: ServerPlatform {
    struct Workload {
        var ref: ServerRef
        var spec: ServerSpec
        var state: ObservedState
    }

    var workloads: [ServerUID: Workload] = [:]
    var files: [ServerUID: [String: [UInt8]]] = [:]
    var events: [PlatformEvent] = []
    var next = 0
    /// Ports something else holds on the node (a host listener, a foreign container).
    public var foreignPorts: Set<PortKey> = []
    /// Images the fake engine has.
    public var images: Set<String> = []
    /// Every call, in order (`ensure`, `start`, `stop`, `remove`, ...).
    public private(set) var calls: [String] = []

    public init() {}

    func workload(_ ref: ServerRef) throws(PlatformError) -> Workload {
        guard let found = workloads.values.first(where: { $0.ref == ref }) else { throw .notFound("no workload \(ref)") }
        return found
    }

    func emit(_ uid: ServerUID, _ ref: ServerRef, _ kind: PlatformEvent.Kind) {
        events.append(PlatformEvent(uid: uid, ref: ref, kind: kind))
    }

    public func ensure(_ spec: ServerSpec) throws(PlatformError) -> ServerRef {
        calls.append("ensure")
        if let existing = workloads[spec.uid] { return existing.ref }
        guard images.contains(spec.image) else { throw .notFound("no image \(spec.image)") }
        next += 1
        let ref = ServerRef("fake-\(next)")
        workloads[spec.uid] = Workload(ref: ref, spec: spec, state: .created)
        emit(spec.uid, ref, .created)
        return ref
    }

    public func start(_ ref: ServerRef) throws(PlatformError) {
        calls.append("start")
        var w = try workload(ref)
        let taken = workloads.values.filter { $0.state == .running && $0.ref != ref }.flatMap { $0.spec.ports.flatMap(\.keys) }
        if let clash = w.spec.ports.flatMap(\.keys).first(where: { foreignPorts.contains($0) || taken.contains($0) }) {
            throw .conflict("port \(clash) is already allocated")
        }
        w.state = .running
        workloads[w.spec.uid] = w
        emit(w.spec.uid, ref, .started)
    }

    public func stop(_ ref: ServerRef, graceSeconds: Int) throws(PlatformError) {
        calls.append("stop")
        var w = try workload(ref)
        guard w.state == .running else { return }
        w.state = .exited(code: 0, oom: false)
        workloads[w.spec.uid] = w
        emit(w.spec.uid, ref, .exited(code: 0))
        emit(w.spec.uid, ref, .stopped)
    }

    /// The game ends on its own (a crash unless code 0 and no OOM).
    public func exit(_ uid: ServerUID, code: Int, oom: Bool = false) {
        guard var w = workloads[uid], w.state == .running else { return }
        w.state = .exited(code: code, oom: oom)
        workloads[uid] = w
        if oom { emit(uid, w.ref, .oomKilled) }
        emit(uid, w.ref, .exited(code: code))
    }

    public func remove(_ uid: ServerUID) throws(PlatformError) {
        calls.append("remove")
        guard let w = workloads.removeValue(forKey: uid) else { return }
        emit(uid, w.ref, .destroyed)
    }

    public func observe(labels: [String]) throws(PlatformError) -> [ObservedWorkload] {
        workloads.values.filter { w in labels.allSatisfy { label in w.spec.labels.contains { "\($0.0)=\($0.1)" == label } } }
            .sorted { $0.ref.raw < $1.ref.raw }
            .map { w in
                // A listing knows no exit details, as Docker's does not.
                let state: ObservedState = w.state.isStopped ? .exited(code: 0, oom: false) : w.state
                return ObservedWorkload(ref: w.ref, uid: w.spec.uid, state: state, labels: Dictionary(w.spec.labels) { a, _ in a })
            }
    }

    public func details(_ ref: ServerRef) throws(PlatformError) -> ObservedWorkload {
        let w = try workload(ref)
        return ObservedWorkload(ref: w.ref, uid: w.spec.uid, state: w.state, labels: Dictionary(w.spec.labels) { a, _ in a })
    }

    public func sample(_ ref: ServerRef) throws(PlatformError) -> StatsSample {
        let w = try workload(ref)
        guard w.state == .running else { throw .conflict("\(ref) is not running") }
        return StatsSample(
            cpuTotal: 0, systemTotal: 0, onlineCPUs: 1, memory: 0, memoryLimit: w.spec.limits.memoryBytes ?? 0, networkRx: 0, networkTx: 0,
            startedAt: 0)
    }

    /// Hands over the events so far, then returns (a stream that ends; the scheduler reconnects).
    /// The fake's games print nothing.
    public func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws {}

    public func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws(PlatformError) {
        let pending = events
        events.removeAll()
        for event in pending where keepGoing() { guard handler(event) else { return } }
    }

    public func takenPorts(for uid: ServerUID) throws(PlatformError) -> Set<PortKey> {
        foreignPorts.union(workloads.values.filter { $0.state == .running }.flatMap { $0.spec.ports.flatMap(\.keys) })
    }

    public func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        calls.append("prepareFiles")
        var tree = files[uid] ?? [:]
        if reinstallActions || !tree.keys.contains(where: { $0.hasPrefix("actions/") }) {
            for file in actions where PlanActions.isSafePath(file.path) { tree["actions/" + file.path] = file.bytes }
        }
        files[uid] = tree
        let existing = Set(plan.files.map(\.source).filter { tree[String($0.dropFirst(3))] != nil })
        return PreparedFiles(directory: "/fake/servers/" + uid.relativeDirectory, existingFiles: existing)
    }

    public func checkFiles(_ uid: ServerUID, plan: Plan) throws(PlatformError) {}

    public func updateFiles(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        calls.append("updateFiles")
        var tree = files[uid] ?? [:]
        for file in actions where PlanActions.isSafePath(file.path) { tree["actions/" + file.path] = file.bytes }
        if mode.redownloadsGame { tree["actions/.update"] = nil }
        if mode.validatesGame { tree["actions/.validate"] = [] }
        if mode.wipesGameFiles { tree = tree.filter { !$0.key.hasPrefix("data/") } }
        files[uid] = tree
    }

    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) {
        files[uid, default: [:]]["peon-server.json"] = bytes
    }

    public func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])] {
        files.compactMap { uid, tree in tree["peon-server.json"].map { (uid, $0) } }.sorted { $0.0.description < $1.0.description }
    }

    /// A test puts a config file where the game would write it.
    public func writeFile(_ uid: ServerUID, _ path: String, _ bytes: [UInt8]) { files[uid, default: [:]][path] = bytes }

    public func readConfig(_ uid: ServerUID) throws(PlatformError) -> [(String, String)] {
        (files[uid] ?? [:]).compactMap { path, bytes in
            guard path.hasPrefix("config/"), case let name = String(path.dropFirst(7)), ServerConfig.isVisible(name),
                let text = String(validating: bytes, as: UTF8.self)
            else { return nil }
            return (name, text)
        }.sorted { $0.0 < $1.0 }
    }

    @discardableResult
    public func removeFiles(_ uid: ServerUID) throws(PlatformError) -> Bool { files.removeValue(forKey: uid) != nil }

    /// Node-local work the fake does not play (console, RCON, backups): a test that needs it sets
    /// a real node here (`PeonNode.LocalNode` over a folder of its own).
    public var node: (any NodeChannel)?

    public func channel(for uid: ServerUID) throws(PlatformError) -> any NodeChannel {
        guard let node else { throw .unavailable("the fake platform has no node") }
        return node
    }

    public func channels() throws(PlatformError) -> [any NodeChannel] { node.map { [$0] } ?? [] }

    public func runningContainer(_ ref: ServerRef) throws(PlatformError) -> (channel: any NodeChannel, container: String) {
        guard try workload(ref).state == .running, let node else { throw .notFound("\(ref) does not run") }
        return (node, ref.raw)
    }

    public func imageFacts(_ image: String) throws(PlatformError) -> ImageFacts? {
        images.contains(image) ? ImageFacts(containerType: "fake", buildVersion: "1") : nil
    }

    public func pull(_ image: String, progress: (String) -> Void) throws(PlatformError) {
        images.insert(image)
        progress("\(image): pulled")
    }

    public func imageID(_ reference: String) throws(PlatformError) -> String? { images.contains(reference) ? "sha256:\(reference)" : nil }

    public func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws(PlatformError) -> Bool {
        guard image.build != nil, !images.contains(image.reference) else { return false }
        images.insert(image.reference)
        return true
    }

    public func pruneImages(labels: [String], keep: Set<String>) throws(PlatformError) -> Int { 0 }
}

@available(*, unavailable)
extension FakePlatform: Sendable {}
