import PeonCore
import PeonJSON
import Testing

/// Numbers that trapped `Int64(Double)` (signal 4, a dead worker) and the checked helper that
/// replaced every such conversion.
@Suite struct HostileNumberTests {
    static let huge: [JSON] = [
        .number(1e19), .number(1.5e300), .number(-1e19), .number(9.223_372_036_854_775_808e18), .number(-9.223_372_036_854_777_856e18),
        .number(1e-300), .number(0.5), .number(-0.5), .number(.greatestFiniteMagnitude), .number(-.greatestFiniteMagnitude),
        "1e19", "NaN", "Infinity", "-Infinity", "nan", "99999999999999999999", "-99999999999999999999", "0x10", "", " ",
    ]

    @Test func checkedNumberRefusesWhatWouldTrap() {
        #expect(CheckedNumber.integer(1e19, in: Int64.min...Int64.max) == nil)
        #expect(CheckedNumber.integer(.nan, in: Int64.min...Int64.max) == nil)
        #expect(CheckedNumber.integer(.infinity, in: Int64.min...Int64.max) == nil)
        #expect(CheckedNumber.integer(-9_223_372_036_854_775_808.0, in: Int64.min...Int64.max) == Int64.min)
        #expect(CheckedNumber.integer(2.5, in: 0...10) == nil)
        #expect(CheckedNumber.integer(7, in: 0...10) == 7)
        #expect(CheckedNumber.integer("99999999999999999999", in: Int64.min...Int64.max) == nil)
        #expect(CheckedNumber.integer("-5", in: 0...10) == nil)
        #expect(CheckedNumber.port(.number(65536)) == nil && CheckedNumber.port("0") == nil && CheckedNumber.port("27015") == 27015)
        #expect(CheckedNumber.port(.number(1e19)) == nil && CheckedNumber.port(.bool(true)) == nil)
        #expect(CheckedNumber.clamped(1e300) == Int64.max && CheckedNumber.clamped(-1) == 0 && CheckedNumber.clamped(.nan) == 0)
        #expect(CheckedNumber.real(.number(1e300), in: 0...512) == nil)
    }

    @Test(arguments: huge)
    func intervalsAndEpochTimesAre400(_ n: JSON) {
        #expect(throws: DomainError.self) { try ScheduledTime.parse(["interval": n], now: 1_800_000_000) }
        #expect(throws: DomainError.self) { try ScheduledTime.parse(["epoch_time": n], now: 1_800_000_000) }
    }

    @Test(arguments: huge)
    func limitsAndCrashPoliciesAre400(_ n: JSON) {
        for key in ["memory_mb", "cpus", "pids"] {
            if key == "cpus", case .number(let d) = n, (0.05...512).contains(d) { continue }  // half a CPU is fine
            #expect(throws: DomainError.self) { try ResourceLimits.parse(.object([(key, n)])) }
        }
        for key in ["max_restarts", "window_seconds"] {
            #expect(throws: DomainError.self) { try CrashPolicy.parse(.object([(key, n)])) }
        }
    }

    /// Found by `make fuzz` against the landed parser from a benign seed (`{"interval": 15}`) in
    /// about 40 s: the whole-number check passed and `Int64(n)` trapped.
    @Test func fuzzerFoundIntervalIs400() throws {
        let body = try JSON.parse(#"{"interval": 122222222222222222222222222222222222222222225}"#)
        #expect(throws: DomainError.self) { try ScheduledTime.parse(body, now: 1_800_000_000) }
    }

    @Test func inRangeNumbersStillWork() throws {
        #expect(try ScheduledTime.parse(["interval": 15], now: 100)?.due == 100 + 900)
        #expect(try ScheduledTime.parse(["epoch_time": .number(1_900_000_000)], now: 1_800_000_000)?.due == 1_900_000_000)
        #expect(try ResourceLimits.parse(["cpus": .number(0.05)]).nanoCPUs == 50_000_000)
        #expect(try CrashPolicy.parse(["max_restarts": 100, "window_seconds": 86400]).maxRestarts == 100)
    }
}

/// Plans may mount only named folders of the server directory, never the directory itself and
/// never one mount inside another (through the outer one a container could swap the inner source).
@Suite struct PlanMountTests {
    let game = try! GameUID(validating: "valheim")

    func plan(_ volumes: String, files: String = "{}") throws -> Plan {
        try Plan(
            document: JSON.parse(#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": \#(volumes), "files": \#(files)}"#),
            expectedGameUID: game)
    }

    @Test(arguments: [
        #"{"~!": "/home/steam"}"#, #"{"~!/": "/home/steam"}"#, #"{"~!/data": "/a", "~!/data/saves": "/b"}"#,
        #"{"~!/data/saves": "/b", "~!/data": "/a"}"#, #"{"~!/data": "/a", "~!/data": "/b"}"#, #"{"~!/peon-server.json": "/m"}"#,
        #"{"~!/./data": "/a"}"#, #"{"~": "/a"}"#,
    ])
    func refusesTheWholeFolderAndNestedMounts(_ volumes: String) {
        #expect(throws: PlanError.self) { try plan(volumes) }
    }

    @Test func refusesAFileInsideAMountedFolder() {
        #expect(throws: PlanError.self) { try plan(#"{"~!/config": "/c"}"#, files: #"{"~!/config/server.cfg": "/s.cfg"}"#) }
    }

    @Test func siblingsAndPrefixNamesAreFine() throws {
        let p = try plan(#"{"~!/data": "/a", "~!/database": "/b", "~!/user/saves": "/c", "~!/user/logs": "/d"}"#)
        #expect(p.volumes.count == 4)
    }

    @Test func portsComeThroughTheCheckedHelper() {
        for port in [#""1e19""#, "1e19", "1.5e300", "-1", "0", "65536", #""NaN""#] {
            let doc = #"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {}, "ports": [[{"P": [\#(port), "udp"]}]]}"#
            #expect(throws: PlanError.self) { try Plan(document: JSON.parse(doc), expectedGameUID: game) }
        }
    }
}

/// `peon-server.json` is read back from a folder others could write: the same checks as a request.
@Suite struct ServerManifestTests {
    let plan = try! Plan(document: JSON.parse(valheimPlan), expectedGameUID: GameUID(validating: "valheim"))
    let uid = try! ServerUID(validating: "valheim.vikings")

    func manifest(ports: JSON = [["name": "PORT", "port": 2456, "proto": "udp"]], extra: [(String, JSON)] = []) -> JSON {
        .object(
            [
                ("uid", "valheim.vikings"), ("description", "d"),
                ("settings", ["SERVER_NAME": "v", "WORLD_NAME": "w", "PASSWORD": "p"]), ("limits", .object([])), ("ports", ports),
            ] + extra)
    }

    @Test func acceptsWhatPeonWrites() throws {
        let m = try ServerManifest(document: manifest(), uid: uid, plan: plan)
        #expect(m.ports == [PortSpec(name: "PORT", port: 2456, proto: .udp)] && m.settings.count == 3)
    }

    @Test(
        arguments: [
            [["name": "PORT", "port": .number(1e19), "proto": "udp"]], [["name": "PORT", "port": .number(-1), "proto": "udp"]],
            [["name": "PORT", "port": .number(70000), "proto": "udp"]], [["name": "PORT", "port": "2456", "proto": "udp"]],
            [["name": "OTHER", "port": 2456, "proto": "udp"]], [["name": "PORT", "port": 2456, "proto": "sctp"]], "lots",
        ] as [JSON])
    func refusesBadPorts(_ ports: JSON) {
        #expect(throws: DomainError.self) { try ServerManifest(document: manifest(ports: ports), uid: uid, plan: plan) }
    }

    @Test func refusesOtherUIDsBadLimitsAndSettings() {
        #expect(throws: DomainError.self) {
            try ServerManifest(document: manifest(), uid: ServerUID(validating: "valheim.other"), plan: plan)
        }
        #expect(throws: DomainError.self) {
            try ServerManifest(document: manifest(extra: [("limits", ["memory_mb": .number(1e19)])]), uid: uid, plan: plan)
        }
        #expect(throws: DomainError.self) {
            try ServerManifest(document: manifest(extra: [("settings", ["SERVER_NAME": ["x"]])]), uid: uid, plan: plan)
        }
    }
}
