import PeonCore
import PeonJSON
import Testing

let valheimPlan = """
    {
        "metadata": {"game_uid": "valheim", "warcamp": "default", "version": "1.0.0",
                     "description": "A Valheim game server for PEON.", "mode": "steamcmd",
                     "hostname": "peon.warcamp.valheim", "image": "umlatt/steamcmd"},
        "ports": [[{"PORT": ["2456", "udp"]}], [{"PORT": ["2457", "udp"]}]],
        "environment": {"STEAM_ID": "896660", "SERVER_NAME": null, "WORLD_NAME": null, "PASSWORD": null},
        "volumes": {"~!/actions": "/actions", "~!/data": "/home/steam/steamcmd/data", "~!/config": "/home/steam/config"}
    }
    """

@Suite struct PlanTests {
    let valheim = try! GameUID(validating: "valheim")

    @Test func parsesThePEONExample() throws {
        let plan = try Plan(document: JSON.parse(valheimPlan), expectedGameUID: valheim)
        #expect(plan.image == "umlatt/steamcmd")
        #expect(plan.portGroups.count == 2)
        #expect(plan.portGroups[0].map { "\($0.name) \($0.port) \($0.proto)" } == ["PORT 2456 udp"])
        #expect(plan.settings.map(\.key) == ["STEAM_ID", "SERVER_NAME", "WORLD_NAME", "PASSWORD"])
        #expect(plan.volumes.map(\.source) == ["~!/actions", "~!/data", "~!/config"])
    }

    @Test func settingsListRequiredFirstThenDefaultsThenDescription() throws {
        let doc = """
            {"metadata": {"game_uid": "csgo", "image": "umlatt/steamcmd", "description": ""},
             "ports": [[{"PORT_GAME": ["27015", "tcp/udp"]}]],
             "environment": {"STEAM_ID": "730", "CSGO_MAP": "de_dust2", "SERVER_NAME": null, "MAX": 16, "STEAM_GSLT": "",
                             "PW": {"label": "Password", "required": true}, "BOT": {"default": false, "type": "boolean"}},
             "volumes": {"~!/data": "/data"}}
            """
        let plan = try Plan(document: JSON.parse(doc), expectedGameUID: GameUID(validating: "csgo"))
        #expect(
            plan.settingsJSON.text
                == #"{"SERVER_NAME":"","STEAM_GSLT":"","PW":"","CSGO_MAP":"de_dust2","MAX":"16","BOT":"false","description":"A PEON game server for csgo."}"#
        )
        #expect(plan.portGroups[0][0].proto == .both)
        // The rich form's hints reach forms; odd ones are left out, never refused.
        let pw = plan.settings.first { $0.key == "PW" }
        let bot = plan.settings.first { $0.key == "BOT" }
        #expect(pw?.label == "Password" && pw?.inputType == nil && bot?.inputType == "boolean" && bot?.options == [])
        let odd = try Plan(
            document: JSON.parse(
                #"{"metadata": {"game_uid": "csgo", "image": "x"}, "environment": {"M": {"default": "a", "type": "<script>", "label": 5, "options": ["a", 1, {"x": 1}]}}, "volumes": {}}"#
            ), expectedGameUID: GameUID(validating: "csgo"))
        let m = odd.settings.first { $0.key == "M" }
        #expect(m?.inputType == nil && m?.label == nil && m?.options == ["a", "1"])
    }

    @Test(arguments: [
        (#"[]"#, "must be a JSON object"),
        (#"{"metadata": {"game_uid": "other", "image": "x"}, "volumes": {}}"#, "metadata.game_uid"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x; rm -rf /"}, "volumes": {}}"#, "metadata.image"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {"/etc": "/etc"}}"#, "inside the server directory"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {"~!/../..": "/x"}}"#, "inside the server directory"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {"~!/data": "rel"}}"#, "absolute path"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {}, "ports": [[{"P": ["70000", "udp"]}]]}"#, "1-65535"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {}, "ports": [[{"a b": ["7", "udp"]}]]}"#, "invalid port name"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {}, "environment": {"A": [1]}}"#, "environment.A"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}, "volumes": {}, "environment": {"$(id)": "1"}}"#, "invalid key"),
        (#"{"metadata": {"game_uid": "valheim", "image": "x"}}"#, "volumes must be an object"),
    ])
    func refusesInvalidPlans(_ doc: String, _ problem: String) throws {
        do {
            _ = try Plan(document: JSON.parse(doc), expectedGameUID: valheim)
            Issue.record("accepted an invalid plan")
        } catch {
            #expect("\(error)".contains(problem), "\(error)")
        }
    }

    @Test func indexSkipsBadEntriesAndReportsThem() throws {
        let index = try JSON.parse(
            #"[{"title": "V", "game_uid": "valheim", "plan_url": "u"}, {"title": "bad", "game_uid": "../x"}, {"title": "dup", "game_uid": "valheim"}, 3]"#
        )
        let (entries, problems) = try PlanIndexEntry.parseIndex(index)
        #expect(entries.map(\.gameUID.rawValue) == ["valheim"])
        #expect(problems.count == 3)
    }

    @Test func bundledPlansAreAllValid() throws {
        // The plans shipped in the repository, read the way peon-api reads them.
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let index = try JSON.parse(Array(readFile("/\(root)/plans/plans.json").utf8))
        let (entries, problems) = try PlanIndexEntry.parseIndex(index)
        #expect(problems.isEmpty)
        #expect(entries.count >= 11)
        for entry in entries {
            let doc = try JSON.parse(Array(readFile("/\(root)/plans/\(entry.gameUID)/plan.json").utf8))
            #expect(throws: Never.self) { try Plan(document: doc, expectedGameUID: entry.gameUID) }
            // Every bundled plan says how to tell that its game accepts players.
            #expect(doc["metadata"]?["ready"]?.objectValue != nil, "\(entry.gameUID) declares no metadata.ready")
        }
    }
}

func readFile(_ path: String) -> String {
    guard let f = fopen(path, "r") else { return "" }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n == 0 { break }
        out += buffer[..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct PlanRuntimeTests {
    let luanti = try! GameUID(validating: "luanti")

    func plan(_ metadata: String) throws -> Plan {
        let doc = """
            {"metadata": {"game_uid": "luanti", \(metadata)}, "ports": [[{"PORT": ["30000", "udp"]}]],
             "environment": {}, "volumes": {"~!/user": "/home/steam/user"}}
            """
        return try Plan(document: JSON.parse(doc), expectedGameUID: luanti)
    }

    @Test func runtimeFollowsTheImageWhenNotNamed() throws {
        #expect(try plan(#""image": "umlatt/steamcmd""#).runtime == .steamcmd)
        #expect(try plan(#""image": "umlatt/steamcmd:latest""#).runtime == .steamcmd)
        #expect(try plan(#""image": "example/game:1""#).runtime == .image)
    }

    @Test func debianRuntimeTakesPackageNames() throws {
        let p = try plan(#""image": "debian:bookworm-slim", "runtime": "debian", "packages": ["minetest-server", "libc6"]"#)
        #expect(p.runtime == .debian)
        #expect(p.packages == ["minetest-server", "libc6"])
    }

    @Test(arguments: [
        #""runtime": "root""#, #""runtime": 1"#, #""runtime": "debian", "packages": ["x; rm -rf /"]"#,
        #""runtime": "debian", "packages": ["-oAPT::x"]"#, #""runtime": "debian", "packages": "minetest-server""#,
        #""packages": ["minetest-server"]"#, #""capabilities": ["SYS_ADMIN"]"#, #""capabilities": ["ALL"]"#,
        #""capabilities": ["SYS_NICE"]"#,
    ])
    func refusesHostileRuntimeFields(_ fields: String) {
        #expect(throws: PlanError.self) { try plan(#""image": "example/game:1", "# + fields) }
    }

    @Test func aPlanSetsItsStopGraceAndReadyLine() throws {
        let plain = try plan(#""image": "example/game:1""#)
        #expect(plain.stopGraceSeconds == 30 && plain.readyLine == nil)
        let set = try plan(#""image": "example/game:1", "stop": {"grace_seconds": 120, "ready_line": "listening on"}"#)
        #expect(set.stopGraceSeconds == 120 && set.readyLine == "listening on")
        for bad in [
            #""stop": {"grace_seconds": 0}"#, #""stop": {"grace_seconds": 601}"#, #""stop": {"grace_seconds": "30"}"#,
            #""stop": {"ready_line": ""}"#, #""stop": {"ready_line": "a\nb"}"#, #""stop": {"kill": true}"#, #""stop": 30"#,
        ] {
            #expect(throws: PlanError.self) { try plan(#""image": "example/game:1", "# + bad) }
        }
    }

    @Test func capabilitiesComeFromTheAllowedList() throws {
        #expect(try plan(#""image": "example/game:1", "capabilities": ["NET_BIND_SERVICE"]"#).capabilities == ["NET_BIND_SERVICE"])
    }
}
