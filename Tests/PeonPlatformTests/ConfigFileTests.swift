import PeonJSON
import PeonPlatform
import Testing

/// `server_config` never shows a file a game is still writing: it keeps the last complete text.
@Suite struct ConfigFileTests {
    @Test func aFileBeingWrittenKeepsItsLastCompleteText() {
        let previous: JSON = ["server_name": "Old name", "motd": "hello"]
        let files = [
            ConfigFile(name: "server_name", text: "", settled: false),  // truncated, being rewritten
            ConfigFile(name: "motd", text: "welcome", settled: true),
            ConfigFile(name: "world", text: "Wor", settled: false),  // new, half written
        ]
        let snapshot = ConfigFile.snapshot(files, keeping: previous)
        #expect(snapshot["server_name"]?.stringValue == "Old name")
        #expect(snapshot["motd"]?.stringValue == "welcome")
        #expect(snapshot["world"] == nil)
    }

    @Test func aDeletedFileLeavesTheSnapshot() {
        let snapshot = ConfigFile.snapshot([], keeping: ["gone": "x"])
        #expect(snapshot["gone"] == nil)
    }
}
