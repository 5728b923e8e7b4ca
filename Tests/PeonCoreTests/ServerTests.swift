import PeonCore
import PeonJSON
import Testing

let testPlanJSON = """
    {"metadata": {"game_uid": "peontest", "image": "peon-test-game:latest", "description": "Test"},
     "ports": [[{"PORT": ["27960", "tcp/udp"]}, {"QUERY": ["27961", "udp"]}], [{"PORT": ["27970", "tcp/udp"]}, {"QUERY": ["27971", "udp"]}]],
     "environment": {"STEAM_ID": "0", "SERVER_NAME": null, "PASSWORD": {"required": true}, "MAX_PLAYERS": {"default": "8"},
                     "MOTD": "hi", "PORT": null, "EXTRA": null},
     "volumes": {"~!/config": "/home/steam/config", "~!/data": "/data"},
     "files": {"~!/server.cfg": "/game/server.cfg", "~!/absent.cfg": "/game/absent.cfg"}}
    """

@Suite struct ServerTests {
    let plan = try! Plan(document: JSON.parse(testPlanJSON), expectedGameUID: GameUID(validating: "peontest"))

    @Test(arguments: hostileNames.filter { $0 != "a.b" } + ["a.b.c", "valheim.", ".x", "valheim.x;id", "valheim"])
    func refusesHostileServerUIDs(_ text: String) {
        #expect(throws: DomainError.self) { try ServerUID(validating: text) }
    }

    @Test func uidNamesContainersAsPEONDoes() throws {
        let uid = try ServerUID(validating: "valheim.riverstead")
        #expect(uid.containerName == "peon.warcamp.valheim.riverstead")
        #expect(uid.relativeDirectory == "valheim/riverstead")
        #expect(uid.description == "valheim.riverstead")
    }

    @Test func randomNamesAvoidTakenOnes() {
        var rng = SystemRandomNumberGenerator()
        let name = WarcampNames.random(avoiding: [], using: &rng)
        #expect(Identifier.isValid(name))
        var taken = Set<String>()
        for p in [
            "black", "castle", "chapel", "cliff", "cold", "crow", "crystal", "dark", "dragon", "eagle", "fire", "forest", "grey", "iron",
            "knights", "law", "mountain", "mystic", "night", "nighthaven", "orchid", "outlaw", "raven", "river", "sanctuary", "shadow",
            "silent", "summer", "thunder", "whiskey", "white", "winter", "wolf",
        ] {
            for s in [
                "brook", "crest", "dale", "edge", "flake", "ford", "glen", "grove", "haven", "hill", "hollow", "keep", "lake", "land",
                "mead", "meadow", "point", "pool", "port", "ridge", "rock", "springs", "stead", "stone", "town", "valley", "view", "ville",
                "wick", "woods",
            ] {
                taken.insert(p + s)
            }
        }
        let fresh = WarcampNames.random(avoiding: taken, using: &rng)
        #expect(!taken.contains(fresh) && Identifier.isValid(fresh))
    }

    @Test func settingsNeedEveryRequiredKey() throws {
        #expect(throws: DomainError.missingSettings(["SERVER_NAME", "PASSWORD", "PORT", "EXTRA"])) {
            try ServerSettings.resolve(plan: plan, request: [:])
        }
        // `any` instead of `all` was PEON's bug: one given key is not enough.
        #expect(throws: DomainError.missingSettings(["PASSWORD", "PORT", "EXTRA"])) {
            try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "x"])
        }
        let resolved = try ServerSettings.resolve(
            plan: plan,
            request: [
                "SERVER_NAME": "My Srv", "PASSWORD": 1234, "PORT": "1", "EXTRA": true, "STEAM_ID": "999", "description": "d",
                "UNKNOWN": "x", "MOTD": "",
            ])
        #expect(resolved.map { "\($0)=\($1)" } == ["SERVER_NAME=My Srv", "PASSWORD=1234", "PORT=1", "EXTRA=true"])
    }

    @Test(arguments: [JSON.array([]), JSON.object([]), JSON.string(String(repeating: "x", count: 5000)), JSON.string("a\u{0}b")])
    func settingValuesMustBeScalars(_ value: JSON) {
        #expect(throws: DomainError.self) { try ServerSettings.resolve(plan: plan, request: .object([("SERVER_NAME", value)])) }
    }

    @Test func specFollowsPlanAndFixesPEONsBugs() throws {
        let uid = try ServerUID(validating: "peontest.s1")
        let settings = try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "S", "PASSWORD": "pw", "PORT": "1", "EXTRA": "e"])
        let spec = ServerSpec(
            uid: uid, plan: plan, settings: settings, ports: plan.portGroups[1], directory: "/srv/peon/servers/peontest/s1",
            existingFiles: ["~!/server.cfg"], extraLabels: [("peon.test", "t")])
        #expect(spec.name == "peon.warcamp.peontest.s1" && spec.hostname == spec.name)
        // Ports first; the plan's own PORT key never overrides the allocated port; no "None".
        #expect(
            spec.environment == [
                "PORT=27970", "QUERY=27971", "STEAM_ID=0", "SERVER_NAME=S", "PASSWORD=pw", "MAX_PLAYERS=8", "MOTD=hi", "EXTRA=e",
            ])
        #expect(
            spec.mounts == [
                Mount(source: "/srv/peon/servers/peontest/s1/config", target: "/home/steam/config"),
                Mount(source: "/srv/peon/servers/peontest/s1/data", target: "/data"),
                Mount(source: "/srv/peon/servers/peontest/s1/server.cfg", target: "/game/server.cfg"),
            ])
        #expect(
            spec.labels.map { "\($0)=\($1)" } == [
                "peon.managed=true", "peon.server=peontest.s1", "peon.game=peontest", "peon.spec=\(spec.fingerprint)", "peon.test=t",
            ])
    }

    @Test func longNamesGetAValidHostname() throws {
        let uid = try ServerUID(validating: String(repeating: "g", count: 32) + "." + String(repeating: "s", count: 32))
        let spec = ServerSpec(uid: uid, plan: plan, settings: [], ports: [], directory: "/d")
        #expect(spec.hostname.utf8.count <= 63 && !spec.hostname.hasSuffix("."))
        #expect(spec.name.utf8.count == 78)
    }

    @Test func portsUseFreeGroupsThenTheRange() throws {
        let groups = plan.portGroups
        #expect(try PortAllocator.allocate(groups: groups, taken: [], range: 30000...30100) == groups[0])
        #expect(try PortAllocator.allocate(groups: groups, taken: [PortKey(27960, .udp)], range: 30000...30100) == groups[1])
        let shifted = try PortAllocator.allocate(
            groups: groups, taken: [PortKey(27961, .udp), PortKey(27970, .tcp), PortKey(30000, .tcp)], range: 30000...30100)
        #expect(shifted.map(\.port) == [30001, 30002])
        #expect(shifted.map(\.name) == ["PORT", "QUERY"])
        // A udp-only port does not block tcp on the same number.
        #expect(
            try PortAllocator.allocate(groups: [[PortSpec(name: "P", port: 5000, proto: .tcp)]], taken: [PortKey(5000, .udp)], range: 1...2)
                .first?.port == 5000)
        #expect(throws: DomainError.self) {
            try PortAllocator.allocate(
                groups: groups, taken: Set((27960...27971).flatMap { [PortKey($0, .tcp), PortKey($0, .udp)] } + [PortKey(30000, .tcp)]),
                range: 30000...30001)
        }
        #expect(PortAllocator.parseRange("20000-29999") == 20000...29999)
        #expect(PortAllocator.parseRange("9-1") == nil && PortAllocator.parseRange("1-70000") == nil)
    }

    @Test(
        arguments: [
            ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("15", 900), (" 5m ", 300),
        ] as [(String, Int64)])
    func intervals(_ text: String, _ seconds: Int64) throws {
        let t = try #require(try ScheduledTime.parse(["interval": .string(text)], now: 1000))
        #expect(t.due == 1000 + seconds && t.wire == .number(Double(1000 + seconds)))
    }

    @Test func epochTimesKeepTheClientsType() throws {
        let now: Int64 = 1_795_000_000
        #expect(try ScheduledTime.parse(["epoch_time": "1999999999"], now: now) == ScheduledTime(due: 1_999_999_999, wire: "1999999999"))
        #expect(try ScheduledTime.parse(["epoch_time": 1_999_999_999], now: now) == ScheduledTime(due: 1_999_999_999, wire: 1_999_999_999))
        #expect(try ScheduledTime.parse(["interval": 30], now: 0)?.due == 1800, "bare number = minutes")
        #expect(try ScheduledTime.parse([:], now: 0) == nil)
        #expect(try ScheduledTime.parse(["interval": JSON.null], now: 0) == nil)
    }

    @Test(
        arguments: [
            ["interval": "5x"], ["interval": "abc"], ["interval": "0m"], ["interval": "-5m"], ["interval": "m"], ["interval": "999999d"],
            ["interval": .number(1.5)], ["interval": [1]], ["epoch_time": "abc"], ["epoch_time": "12345"], ["epoch_time": "99999999999999"],
            ["epoch_time": .number(1.5)], ["epoch_time": true], ["interval": "5m", "epoch_time": "1999999999"], ["interval": "$(id)"],
        ] as [JSON])
    func badSchedulesAre400(_ body: JSON) {
        #expect(throws: DomainError.self) { try ScheduledTime.parse(body, now: 1_800_000_000) }
    }

    @Test func crashPolicyBacksOffThenGivesUp() {
        let policy = CrashPolicy(maxRestarts: 3, windowSeconds: 600, baseDelaySeconds: 2)
        #expect(policy.decide(previousCrashes: [], now: 1000) == .restart(afterSeconds: 2))
        #expect(policy.decide(previousCrashes: [990], now: 1000) == .restart(afterSeconds: 4))
        #expect(policy.decide(previousCrashes: [980, 990], now: 1000) == .restart(afterSeconds: 8))
        if case .giveUp = policy.decide(previousCrashes: [970, 980, 990], now: 1000) {} else { Issue.record("did not give up") }
        #expect(policy.decide(previousCrashes: [1, 2, 3], now: 1000) == .restart(afterSeconds: 2), "old crashes are outside the window")
        if case .giveUp = CrashPolicy(enabled: false).decide(previousCrashes: [], now: 0) {} else { Issue.record("off did not give up") }
    }
}

@Suite struct LimitsTests {
    @Test func limitsParseOverADefault() throws {
        let base = ResourceLimits(memoryBytes: 1 << 30, nanoCPUs: nil, pids: 512)
        let l = try ResourceLimits.parse(["cpus": .number(1.5), "pids": 100], over: base)
        #expect(l.memoryBytes == 1 << 30 && l.nanoCPUs == 1_500_000_000 && l.pids == 100)
        #expect(try ResourceLimits.parse(nil, over: base) == base)
        #expect(try ResourceLimits.parse(["memory_mb": 64]).memoryBytes == 64 << 20)
    }

    @Test(
        arguments: [
            ["memory_mb": 1], ["memory_mb": .number(1.5)], ["cpus": 0], ["pids": 1], ["swap": 1], ["memory_mb": "64"], JSON.array([]),
        ] as [JSON])
    func refusesBadLimits(_ value: JSON) {
        #expect(throws: DomainError.self) { try ResourceLimits.parse(value) }
    }

    @Test func fingerprintFollowsWhatShapesTheContainer() throws {
        let plan = try Plan(document: JSON.parse(testPlanJSON), expectedGameUID: GameUID(validating: "peontest"))
        let uid = try ServerUID(validating: "peontest.f")
        let a = ServerSpec(uid: uid, plan: plan, settings: [("SERVER_NAME", "a")], ports: [], directory: "/d")
        let b = ServerSpec(uid: uid, plan: plan, settings: [("SERVER_NAME", "b")], ports: [], directory: "/d")
        let c = ServerSpec(
            uid: uid, plan: plan, settings: [("SERVER_NAME", "a")], ports: [], directory: "/d", limits: ResourceLimits(pids: 64))
        #expect(a.fingerprint == ServerSpec(uid: uid, plan: plan, settings: [("SERVER_NAME", "a")], ports: [], directory: "/d").fingerprint)
        #expect(a.fingerprint != b.fingerprint && a.fingerprint != c.fingerprint && !a.fingerprint.isEmpty)
    }
}

@Suite struct CrashPolicyParseTests {
    @Test func parsesOverTheDefault() throws {
        let p = try CrashPolicy.parse(["enabled": false, "max_restarts": 5, "window_seconds": 900])
        #expect(!p.enabled && p.maxRestarts == 5 && p.windowSeconds == 900)
        #expect(try CrashPolicy.parse(nil) == CrashPolicy())
    }

    @Test(arguments: [["enabled": "no"], ["max_restarts": 1000], ["window_seconds": 1], ["other": 1], JSON.array([])] as [JSON])
    func refusesBadPolicies(_ value: JSON) {
        #expect(throws: DomainError.self) { try CrashPolicy.parse(value) }
    }
}
