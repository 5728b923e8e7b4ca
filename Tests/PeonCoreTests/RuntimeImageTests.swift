import PeonCore
import PeonJSON
import Testing

/// Runtime image tags name their inputs: same inputs, same tag (a cached build); any input changed,
/// a new tag (a rebuild). Update modes say what each does.
@Suite struct RuntimeImageTests {
    func plan(_ game: String, runtime: String? = nil, image: String = "umlatt/steamcmd", packages: [String] = []) throws -> Plan {
        let runtimeField = runtime.map { #", "runtime": "\#($0)""# } ?? ""
        let packagesField = packages.isEmpty ? "" : #", "packages": [\#(packages.map { "\"\($0)\"" }.joined(separator: ","))]"#
        let text = #"""
            {"metadata": {"game_uid": "\#(game)", "image": "\#(image)"\#(runtimeField)\#(packagesField)},
             "ports": [], "environment": {"STEAM_ID": "1"}, "volumes": {"~!/actions": "/actions", "~!/data": "/home/steam/steamcmd/data"}}
            """#
        return try Plan(document: JSON.parse(Array(text.utf8)), expectedGameUID: GameUID(validating: game))
    }

    let files = [
        RuntimeImage.File(path: "Dockerfile", bytes: Array("FROM x\n".utf8), mode: 0o644),
        RuntimeImage.File(path: "entry.sh", bytes: Array("#!/bin/bash\n".utf8), mode: 0o755),
    ]

    @Test func namesTheRuntimeAndTheGameOnlyWhenItHasPackages() throws {
        let shared = RuntimeImage(plan: try plan("valheim"), files: files, baseID: "sha256:b")
        #expect(shared.reference.hasPrefix("peon/runtime-steamcmd:") && shared.reference.count == "peon/runtime-steamcmd:".count + 16)
        #expect(RuntimeImage(plan: try plan("ark"), files: files, baseID: "sha256:b").reference == shared.reference)
        let luanti = RuntimeImage(
            plan: try plan("luanti", runtime: "debian", image: "peon/runtime-debian", packages: ["minetest-server"]), files: files,
            baseID: "sha256:b", extraLabels: [("peon.test", "x")])
        #expect(luanti.reference.hasPrefix("peon/runtime-debian-luanti:"))
        #expect(luanti.build?.buildArgs == [.init("BASE", "debian:bookworm-slim"), .init("PACKAGES", "minetest-server")])
        let labels = luanti.build?.labels ?? []
        #expect(labels.contains(.init("peon.managed", "true")) && labels.contains(.init("peon.runtime", "debian")))
        #expect(labels.contains(.init("peon.test", "x")) && labels.contains { $0.key == "peon.inputs" })
    }

    @Test func imagePlansUseTheirImageAsIs() throws {
        let image = RuntimeImage(plan: try plan("sotf", image: "jammsen/sons:1"), files: files, baseID: nil)
        #expect(image.reference == "jammsen/sons:1" && image.build == nil && image.runtime == .image)
    }

    @Test func everyInputChangesTheTagAndNothingElseDoes() throws {
        let p = try plan("valheim")
        let base = RuntimeImage(plan: p, files: files, baseID: "sha256:b").reference
        #expect(RuntimeImage(plan: p, files: files.reversed(), baseID: "sha256:b").reference == base, "file order is not an input")
        #expect(RuntimeImage(plan: p, files: files, baseID: "sha256:b", extraLabels: [("a", "b")]).reference == base)
        let changed = [
            RuntimeImage(plan: p, files: files, baseID: "sha256:c"),
            RuntimeImage(
                plan: p, files: [files[0], .init(path: "entry.sh", bytes: Array("#!/bin/sh\n".utf8), mode: 0o755)], baseID: "sha256:b"),
            RuntimeImage(plan: p, files: [files[0], .init(path: "entry.sh", bytes: files[1].bytes, mode: 0o644)], baseID: "sha256:b"),
            RuntimeImage(plan: p, files: files, baseID: "sha256:b", buildArgs: [.init("STEAMCMD", "standin")]),
            RuntimeImage(plan: try plan("valheim", packages: ["less"]), files: files, baseID: "sha256:b"),
            RuntimeImage(plan: try plan("valheim", runtime: "debian"), files: files, baseID: "sha256:b"),
        ].map { $0.reference.split(separator: ":").last.map(String.init) ?? "" }
        #expect(Set(changed).count == changed.count && !changed.contains(String(base.split(separator: ":").last ?? "")))
    }

    @Test func updateModesAndPEONsAliases() throws {
        #expect(try UpdateMode(parsing: nil) == .full)
        #expect(
            try UpdateMode(parsing: "ALL") == .full && UpdateMode(parsing: "container") == .image && UpdateMode(parsing: "Game") == .server)
        for bad in ["", "$(id)", "fast", "full "] {
            #expect(throws: DomainError.self) { try UpdateMode(parsing: bad) }
        }
        let table = UpdateMode.allCases.map { m in
            "\(m.rawValue) \(m.refreshesImage ? "I" : "-")\(m.redownloadsGame ? "G" : "-")\(m.validatesGame ? "V" : "-")\(m.wipesGameFiles ? "W" : "-")"
        }
        #expect(table == ["full IG--", "image I---", "server -G--", "reinit IG-W", "validate -GV-", "quick ----"])
    }

    @Test func runtimeContainersGetGameDirAndThePlansCapabilities() throws {
        let uid = try ServerUID(validating: "valheim.a")
        let spec = ServerSpec(
            uid: uid, plan: try plan("valheim"), settings: [], ports: [], directory: "/d", image: "peon/runtime-steamcmd:1")
        #expect(spec.image == "peon/runtime-steamcmd:1" && spec.environment.last == "GAME_DIR=/home/steam/steamcmd/data")
        #expect(spec.limits == ResourceLimits(memoryBytes: 4 << 30, nanoCPUs: nil, pids: 4096) && spec.capabilities.isEmpty)
        let other = ServerSpec(
            uid: uid, plan: try plan("valheim"), settings: [], ports: [], directory: "/d", image: "peon/runtime-steamcmd:2")
        #expect(other.fingerprint != spec.fingerprint, "a new image re-creates the container")
        let plain = ServerSpec(uid: uid, plan: try plan("valheim", image: "x/y:1"), settings: [], ports: [], directory: "/d")
        #expect(!plain.environment.contains { $0.hasPrefix("GAME_DIR=") })
    }

    @Test func imageBuildArgumentsFromTheConfiguration() throws {
        let c = try Configuration(environment: ["PEON_IMAGE_BUILD_ARGS": "STEAMCMD=standin,X=1"], defaultWorkers: 1)
        #expect(c.imageBuildArgs.map { "\($0.0)=\($0.1)" } == ["STEAMCMD=standin", "X=1"] && c.imagesDir == "./images")
        for bad in ["BASE=evil", "PACKAGES=x", "A B=1", "A=has space", "=1", "1A=2"] {
            #expect(throws: DomainError.self) { try Configuration(environment: ["PEON_IMAGE_BUILD_ARGS": bad], defaultWorkers: 1) }
        }
    }
}
