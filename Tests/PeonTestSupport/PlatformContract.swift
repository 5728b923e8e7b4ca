public import PeonCore
public import PeonPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// What every `ServerPlatform` must do, checked the same way on the fake, Docker and Swarm.
///
/// Each platform's test target builds a spec for an image its engine has (a game that keeps
/// running and publishes `spec.ports`) and calls `run()`; the failures come back as text so this
/// target needs no test framework. Engines act asynchronously, so states are polled up to `patience`.
public struct PlatformContract {
    public let platform: any ServerPlatform
    public let spec: ServerSpec
    public let plan: Plan
    public let patience: Double

    public init(platform: any ServerPlatform, spec: ServerSpec, plan: Plan, patience: Double = 20) {
        self.platform = platform
        self.spec = spec
        self.plan = plan
        self.patience = patience
    }

    /// Runs every clause; returns what failed (empty: the platform keeps the contract).
    public func run() -> [String] {
        var failures: [String] = []
        func check(_ ok: @autoclosure () throws -> Bool, _ what: String) {
            do {
                if try !ok() { failures.append(what) }
            } catch {
                failures.append("\(what): \(error)")
            }
        }
        defer {
            try? platform.remove(spec.uid)
            _ = try? platform.removeFiles(spec.uid)
        }
        do {
            // The node first (multi-node platforms), then the files: a server's folder exists before its workload.
            _ = try platform.place(spec.uid, ports: Set(spec.ports.flatMap(\.keys)), memoryBytes: spec.limits.memoryBytes ?? 0)
            let files = try platform.prepareFiles(
                spec.uid, plan: plan, actions: [PlanFile(path: "server_start", bytes: Array("#!/bin/sh\n".utf8), executable: true)],
                reinstallActions: false)
            check(!files.directory.isEmpty, "prepareFiles names the server folder")
            try platform.writeManifest(spec.uid, Array(#"{"uid": "\#(spec.uid)"}"#.utf8))
            check(try platform.manifests().contains { $0.0 == spec.uid }, "a written manifest is listed")
            check(try platform.readConfig(spec.uid).isEmpty, "a new server has no config files")

            let ref = try platform.ensure(spec)
            check(try platform.ensure(spec) == ref, "ensure adopts the existing workload: never two per server")
            check(try platform.observe(labels: []).filter { $0.uid == spec.uid }.map(\.ref) == [ref], "observe lists the one workload")
            try platform.start(ref)
            check(eventually { (try? platform.details(ref).state) == .running }, "a started workload runs")
            let ports = Set(spec.ports.flatMap(\.keys))
            check(eventually { (try? platform.takenPorts(for: spec.uid)).map(ports.isSubset) ?? false }, "its ports are taken on its node")
            try platform.stop(ref, graceSeconds: 2)
            check(eventually { (try? platform.details(ref).state.isStopped) ?? false }, "a stopped workload has exited")
            try platform.remove(spec.uid)
            check(eventually { (try? platform.observe(labels: []).contains { $0.uid == spec.uid }) == false }, "remove leaves no workload")
            check(notFound(ref), "details of a removed workload is notFound")
            check(notFound(ServerRef("peon-contract-no-such-workload")), "details of an unknown ref is notFound")
            check(try platform.manifests().contains { $0.0 == spec.uid }, "remove keeps the server's files")
            // A destroyed server's folder is still found by its uid alone (erased later, as PEON's UI does).
            check(try platform.removeFiles(spec.uid), "removeFiles finds the folder of a removed workload")
            check(try !platform.manifests().contains { $0.0 == spec.uid }, "removeFiles removes them")
            check(try !platform.removeFiles(spec.uid), "removeFiles of a folder already gone answers false")
        } catch {
            failures.append("unexpected error: \(error)")
        }
        return failures
    }

    func eventually(_ condition: () -> Bool) -> Bool {
        var waited = 0.0
        while waited < patience {
            if condition() { return true }
            usleep(100_000)
            waited += 0.1
        }
        return condition()
    }

    func notFound(_ ref: ServerRef) -> Bool {
        do {
            _ = try platform.details(ref)
            return false
        } catch {
            if case .notFound = error { return true }
            return false
        }
    }
}
