import PeonCore
import Testing

/// The files API's paths: plain names below `config/`, `user/` or `actions/`, nothing else.
@Suite struct ServerFilePathTests {
    @Test(arguments: ["config", "config/", "user/mods/a.zip", "actions/server_start", "user/a b/ü.txt", "user/.hidden", "user/..x"])
    func acceptsPlainPaths(_ text: String) throws {
        let path = try ServerFilePath(validating: text)
        #expect(path.description == (text.hasSuffix("/") ? String(text.dropLast()) : text))
    }

    @Test(arguments: [
        "", "/", "/etc/passwd", "../x", "config/../../etc", "config/./x", "config//x", "config/x\0y", "config/x\ny", "data/world",
        "peon-server.json", "CONFIG/x", "config/" + String(repeating: "a", count: 256),
        String(repeating: "user/", count: 33) + "x", "user/" + String(repeating: "a/", count: 600), "config/\u{7f}", "config/\u{1b}[2J",
        "./config", "config//", "user\\..\\..",
    ])
    func refusesEverythingElse(_ text: String) {
        #expect(throws: DomainError.self) { try ServerFilePath(validating: text) }
    }

    @Test func namesItsParts() throws {
        let path = try ServerFilePath(validating: "user/mods/a.zip")
        #expect(path.area == .user && path.name == "a.zip" && path.parent == "user/mods" && !path.isArea)
        #expect(try ServerFilePath(validating: "actions").isArea && !ServerFilePath.Area.actions.writable)
    }
}
