import PeonCore
import PeonJSON
import PeonStore
import PeonSystem
import Testing

@testable import PeonScheduler

#if canImport(Glibc)
    import Glibc
#endif

/// Job progress on a real SQLite file: phases, the builder's steps as percent, hostile output
/// lines made printable and short, and at most a few writes a second.
@Suite struct JobProgressTests {
    func store() throws -> (Store, Int64) {
        var template = Array("/tmp/peon-progress-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let store = try Store(path: dir + "/peon.db")
        let id = try store.write { tx in
            try tx.insertServer(
                ServerRecord(uid: try ServerUID(validating: "luanti.a"), description: "", settings: [], createdAt: 0), now: 0)
            return try tx.enqueueJob(server: "luanti.a", .create(start: false, noclean: false), now: 0)
        }
        return (store, id)
    }

    @Test func reportsPhasesStepsAndTheLastLines() throws {
        let (store, id) = try store()
        let progress = JobProgress(store: store, jobID: id)
        progress.enter(.building)
        #expect(try store.read { tx in try tx.job(id) }?.progress == ["phase": "building", "lines": []])
        for n in 1...12 { progress.line("Step \(n)/12 : RUN thing \(n)") }
        progress.line("\u{1b}[31mred\u{7}\tand \u{0}nul")
        progress.line(String(repeating: "é", count: 500))
        progress.flush()
        let json = try store.read { tx in try tx.job(id) }?.progress
        #expect(json?["percent"] == 91)
        let lines = json?["lines"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(lines.count == JobProgress.keptLines && lines.first == "Step 7/12 : RUN thing 7")
        #expect(lines[lines.count - 2] == "[31mredand nul" && lines.last?.utf8.count == 200)
        progress.enter(.starting)
        #expect(try store.read { tx in try tx.job(id) }?.progress?["phase"] == "starting")
        #expect(try store.read { tx in try tx.job(id) }?.progress?["percent"] == nil)
    }

    @Test func stepsOnlyFromTheBuildersOwnWords() {
        #expect(JobProgress.step("Step 1/4 : FROM x") == 0 && JobProgress.step("Step 4/4 : CMD") == 75)
        for line in ["Step 5/4 : x", "Step 0/4 : x", "Step 1/0", "Steps 1/2", "step 1/2", "Step a/b", "Step 1/2/3 :"] {
            #expect(JobProgress.step(line) == nil, "\(line)")
        }
    }
}
