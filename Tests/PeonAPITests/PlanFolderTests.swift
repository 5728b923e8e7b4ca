import Glibc
import PeonCore
import PeonJSON
import PeonStore
import PeonSystem
import Testing

/// Plan folders on disk: plan.json and actions/ loaded together, or refused together.
@Suite struct PlanFolderTests {
    static func plan(_ uid: String, image: String = "umlatt/steamcmd") -> String {
        #"{"metadata": {"game_uid": "\#(uid)", "image": "\#(image)"}, "volumes": {"~!/data": "/data"}}"#
    }

    @Test func actionsAreStoredWithThePlan() throws {
        let h = try Harness(plans: [
            "plans.json": #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}]"#,
            "good/plan.json": Self.plan("good"),
            "good/actions/server_start": "#!/bin/sh\nexec game\n",
            "good/actions/lib/common.sh": "X=1\n",
        ])
        let files = try h.context.store.read { tx in try tx.planFiles(GameUID(validating: "good")) }
        #expect(files.map(\.path) == ["lib/common.sh", "server_start"])
        #expect(files.last?.executable == true && files.last?.bytes == Array("#!/bin/sh\nexec game\n".utf8))
    }

    @Test func linksFIFOsAndAMissingServerStartAreReportedPerPlan() throws {
        let h = try Harness(plans: [
            "plans.json": #"[{"title": "Good", "game_uid": "good", "plan_url": "u"}]"#,
            "good/plan.json": Self.plan("good", image: "peon/game:1"),
            "linked/plan.json": Self.plan("linked"), "linked/actions/server_start": "#!/bin/sh\n",
            "piped/plan.json": Self.plan("piped"), "piped/actions/server_start": "#!/bin/sh\n",
            "nostart/plan.json": Self.plan("nostart"), "nostart/actions/readme": "x",
            "badname/plan.json": Self.plan("badname"), "badname/actions/server_start": "#!/bin/sh\n",
            "badname/actions/.hidden": "x",
        ])
        let plans = h.context.configuration.plansDir
        #expect(symlink("/etc/passwd", plans + "/linked/actions/passwd") == 0)
        #expect(mkfifo(plans + "/piped/actions/pipe", 0o644) == 0)
        let r = h.send("PUT", "/api/v1/plans", key: h.adminKey)
        #expect(r.status == 200)
        let failed = Dictionary(
            uniqueKeysWithValues: (r.json?["failed"]?.arrayValue ?? []).map {
                ($0["game_uid"]?.stringValue ?? "", $0["error"]?.stringValue ?? "")
            })
        #expect(failed["linked"]?.contains("not a regular file") == true)
        #expect(failed["piped"]?.contains("not a regular file") == true)
        #expect(failed["nostart"]?.contains("server_start is required by the steamcmd runtime") == true)
        #expect(failed["badname"]?.contains("file names must be") == true)
        #expect(failed["good"] == nil)
        for uid in ["nostart", "badname"] {
            #expect(h.send("GET", "/api/v1/plan/\(uid)", key: h.readKey).status == 404)
        }
        // Loaded before the link and the FIFO appeared: the previous version stays, files and all.
        for uid in ["linked", "piped"] {
            #expect(h.send("GET", "/api/v1/plan/\(uid)", key: h.readKey).status == 200)
            #expect(try h.context.store.read { tx in try tx.planFiles(GameUID(validating: uid)) }.map(\.path) == ["server_start"])
        }
    }
}
