import PeonCore
import PeonJSON
import Testing

@Suite struct PlayerQueryTests {
    @Test func parsesPlanDeclarations() throws {
        #expect(try PlayerQuery.parse(nil) == nil)
        #expect(try PlayerQuery.parse(JSON.parse(#"{"query": "a2s"}"#)) == .a2s(port: nil))
        #expect(try PlayerQuery.parse(JSON.parse(#"{"query": "a2s", "port": "QUERY"}"#)) == .a2s(port: "QUERY"))
        #expect(try PlayerQuery.parse(JSON.parse(#"{"query": "luanti"}"#)) == .luanti)
        #expect(
            try PlayerQuery.parse(JSON.parse(#"{"query": "log", "join": "joined", "leave": "left"}"#))
                == .log(join: "joined", leave: "left", file: "config/debug.txt"))
        for bad in [
            #"{"query": "ping"}"#, #"[]"#, #"{"query": "log", "join": "x"}"#, #"{"query": "log", "join": "", "leave": "y"}"#,
            #"{"query": "log", "join": "a\nb", "leave": "y"}"#, #"{"query": "log", "join": "a", "leave": "b", "file": "../../etc/shadow"}"#,
            #"{"query": "log", "join": "a", "leave": "b", "file": "/etc/shadow"}"#,
            #"{"query": "log", "join": "a", "leave": "b", "file": "config/../x"}"#,
            #"{"query": "a2s", "port": "$(id)"}"#, #"{"query": 1}"#,
        ] {
            #expect(throws: DomainError.self, "\(bad)") { try PlayerQuery.parse(JSON.parse(bad)) }
        }
    }

    /// A real A2S_INFO answer shape: header, protocol, name, map, folder, game, app id, players, max, bots.
    static func info(players: UInt8, max: UInt8, bots: UInt8 = 0) -> [UInt8] {
        [0xFF, 0xFF, 0xFF, 0xFF, 0x49, 17] + Array("Peon\0map\0valheim\0Valheim\0".utf8) + [
            0x00, 0x00, players, max, bots, 0x64, 0x6C, 0, 1,
        ]
    }

    @Test func a2sReplies() {
        #expect(PlayerQuery.a2sInfo(Self.info(players: 3, max: 10))! == (3, 10))
        #expect(PlayerQuery.a2sInfo(Self.info(players: 3, max: 10, bots: 2))! == (1, 10))
        #expect(PlayerQuery.a2sChallenge([0xFF, 0xFF, 0xFF, 0xFF, 0x41, 1, 2, 3, 4]) == [1, 2, 3, 4])
        #expect(PlayerQuery.a2sRequest(challenge: [1, 2, 3, 4]).suffix(5) == [0, 1, 2, 3, 4])
        for bad: [UInt8] in [
            [], [0xFF, 0xFF, 0xFF, 0xFF, 0x49], [0xFF, 0xFF, 0xFF, 0xFF, 0x49, 17, 0x41, 0x42],
            Array(Self.info(players: 1, max: 2).prefix(30)),
            [UInt8](repeating: 0xFF, count: 2000),
        ] {
            #expect(PlayerQuery.a2sInfo(bad) == nil)
        }
    }

    @Test func luantiLogs() {
        let log = """
            2026-11-29 10:00:00: ACTION[Main]: Server for gameid="minetest" listening on [::]:30000.
            2026-11-29 10:01:00: ACTION[Server]: alice [127.0.0.1] joins game. List of players: alice
            2026-11-29 10:02:00: ACTION[Server]: bob [127.0.0.1] joins game. List of players: alice bob
            """
        #expect(PlayerQuery.luantiPlayers(log: log) == 2)
        #expect(PlayerQuery.luantiPlayers(log: log + "\n2026-11-29 10:03:00: ACTION[Server]: bob leaves game. List of players: alice") == 1)
        #expect(PlayerQuery.luantiPlayers(log: log + "\nx: alice leaves game. List of players: ") == 0)
        #expect(PlayerQuery.luantiPlayers(log: log + "\nx: Server for gameid=\"minetest\" listening on [::]:30000.") == 0)
        #expect(PlayerQuery.luantiPlayers(log: "") == nil)
        #expect(PlayerQuery.logPlayers(log: "a joined\nb joined\na left\nc left\nc left", join: "joined", leave: "left") == 0)
        #expect(PlayerQuery.logPlayers(log: "a joined\nb joined\na left", join: "joined", leave: "left") == 1)
    }

    @Test func idleStopDecisions() throws {
        #expect(IdleStop.decide(players: 0, idleSince: nil, idleMinutes: 10, now: 1000) == (false, 1000))
        #expect(IdleStop.decide(players: 0, idleSince: 1000, idleMinutes: 10, now: 1599) == (false, 1000))
        #expect(IdleStop.decide(players: 0, idleSince: 1000, idleMinutes: 10, now: 1600) == (true, nil))
        #expect(IdleStop.decide(players: 1, idleSince: 1000, idleMinutes: 10, now: 5000) == (false, nil))
        #expect(IdleStop.decide(players: nil, idleSince: 1000, idleMinutes: 10, now: 5000) == (false, nil), "unknown never stops")
        #expect(IdleStop.decide(players: 0, idleSince: 1000, idleMinutes: nil, now: 5000) == (false, nil))
        // Tests and demos shorten the minute (PEON_IDLE_MINUTE_SECONDS).
        #expect(IdleStop.decide(players: 0, idleSince: 1000, idleMinutes: 2, now: 1009, minuteSeconds: 5) == (false, 1000))
        #expect(IdleStop.decide(players: 0, idleSince: 1000, idleMinutes: 2, now: 1010, minuteSeconds: 5) == (true, nil))
        #expect(try IdleStop.parse(JSON.parse("15")) == 15)
        #expect(try IdleStop.parse(JSON.parse("0")) == nil)
        #expect(try IdleStop.parse(.null) == nil)
        for bad in ["-1", "10081", "1e300", "1.5", "\"x\"", "[]", "true"] {
            #expect(throws: DomainError.self, "\(bad)") { try IdleStop.parse(JSON.parse(bad)) }
        }
    }
}

@Suite struct WebhookTests {
    @Test func urls() throws {
        for ok in [
            "https://example.com/hook", "http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x",
            "https://discord.com/api/webhooks/1/abc",
        ] {
            try WebhookRequest.validate(url: ok)
        }
        for bad in [
            "", "ftp://x", "http://example.com/x", "https://user:pw@example.com/", "https://@example.com", "https://", "https:///x",
            "https://exa mple.com", "https://example.com/\u{0}", "javascript:alert(1)", "file:///etc/passwd", "http://127.0.0.1@evil.com/",
            "https://example.com/" + String(repeating: "a", count: 3000), "http://localhost.evil.com/", "gopher://127.0.0.1/",
            "https://x\\@evil.com/",
        ] {
            #expect(throws: DomainError.self, "\(bad)") { try WebhookRequest.validate(url: bad) }
        }
    }

    @Test func bodiesAndRetries() throws {
        let r = try WebhookRequest(
            JSON.parse(#"{"url": "https://discord.com/api/webhooks/1/x", "events": ["crashed", "crashed", "idle_stop"]}"#))
        #expect(r.events == [.crashed, .idleStop] && r.server == nil)
        let discord = WebhookRequest.body(url: r.url, event: .crashed, server: "valheim.a", at: 5, detail: ["exit_code": 3])
        #expect(discord["content"] == "Server valheim.a crashed." && discord["embeds"]?.arrayValue?.count == 1)
        let plain = WebhookRequest.body(url: "https://example.com/", event: .crashed, server: "valheim.a", at: 5, detail: .object([]))
        #expect(plain["event"] == "crashed" && plain["server"] == "valheim.a")
        for bad in [
            #"{"url": "https://e.com", "events": ["boom"]}"#, #"{"url": "https://e.com", "events": "crashed"}"#,
            #"{"url": "https://e.com", "server": "../x"}"#, #"{"events": []}"#, #"{"url": 5}"#,
        ] {
            #expect(throws: DomainError.self, "\(bad)") { try WebhookRequest(JSON.parse(bad)) }
        }
        #expect((0...6).map(WebhookRetry.delay) == [nil, 1, 5, 30, 120, 600, nil])
    }
}

@Suite struct PlanPlayersTests {
    @Test func plansWithABadPlayersDeclarationAreRefused() throws {
        func plan(_ players: String) throws -> Plan {
            try Plan(
                document: JSON.parse(#"{"metadata": {"game_uid": "g", "image": "x/y:1", "players": \#(players)}, "volumes": {}}"#),
                expectedGameUID: GameUID(validating: "g"))
        }
        _ = try plan(#"{"query": "a2s"}"#)
        #expect(throws: (any Error).self) { try plan(#"{"query": "log", "join": "a", "leave": "b", "file": "../../etc/shadow"}"#) }
        #expect(throws: (any Error).self) { try plan(#"{"query": "telnet"}"#) }
    }
}
