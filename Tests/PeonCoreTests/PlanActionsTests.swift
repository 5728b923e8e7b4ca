import PeonCore
import Testing

@Suite struct PlanActionsTests {
    static func file(_ path: String, _ size: Int = 4) -> PlanFile {
        PlanFile(path: path, bytes: Array(repeating: 65, count: size), executable: false)
    }

    @Test func serverStartIsRequiredUnlessTheImageRunsItself() throws {
        #expect(throws: PlanError.self) { try PlanActions(files: [], runtime: .steamcmd) }
        #expect(throws: PlanError.self) { try PlanActions(files: [Self.file("init_custom")], runtime: .debian) }
        #expect(try PlanActions(files: [], runtime: .image).files.isEmpty)
        let actions = try PlanActions(files: [Self.file("server_start"), Self.file("lib/a.sh")], runtime: .steamcmd)
        #expect(actions.files.map(\.path) == ["lib/a.sh", "server_start"])
        #expect(actions.files.last?.executable == true)
    }

    @Test(arguments: ["", ".update", ".hidden", "-rf", "a/../b", "../x", "/abs", "a//b", "sp ace", "semi;colon", "a/b/c/d/e", "é"])
    func refusesUnsafeNames(path: String) {
        #expect(throws: PlanError.self) { try PlanActions(files: [Self.file("server_start"), Self.file(path)], runtime: .steamcmd) }
    }

    @Test func boundsCountAndSizes() {
        let many = (0...PlanActions.maximumFiles).map { Self.file("f\($0)") }
        #expect(throws: PlanError.self) { try PlanActions(files: many, runtime: .image) }
        #expect(throws: PlanError.self) { try PlanActions(files: [Self.file("big", PlanActions.maximumFileBytes + 1)], runtime: .image) }
        let total = (0..<5).map { Self.file("f\($0)", PlanActions.maximumFileBytes) }
        #expect(throws: PlanError.self) { try PlanActions(files: total, runtime: .image) }
        #expect(throws: PlanError.self) { try PlanActions(files: [Self.file("a"), Self.file("a/b")], runtime: .image) }
        #expect(throws: PlanError.self) {
            try PlanActions(files: [PlanFile(path: "server_start", bytes: [0xff, 0xfe], executable: true)], runtime: .steamcmd)
        }
    }
}
