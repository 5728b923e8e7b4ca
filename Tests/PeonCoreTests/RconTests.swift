import PeonCore
import PeonJSON
import Testing

@Suite struct RconTests {
    static func le(_ values: Int32...) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: UInt32(bitPattern: v) >> (8 * $0)) } }
    }

    static func packet(_ id: Int32, _ type: Int32, _ body: String = "") -> RconPacket {
        RconPacket(id: id, type: type, body: Array(body.utf8))
    }

    @Test func encodesValvesLayout() {
        #expect(RconPacket(id: 1, type: 3, body: Array("pw".utf8)).bytes == Self.le(12, 1, 3) + [0x70, 0x77, 0, 0])
        #expect(RconPacket(id: 3, type: 0, body: []).bytes == Self.le(10, 3, 0) + [0, 0])
    }

    @Test func decodesSplitAndJoinedPackets() throws {
        let stream = Self.packet(2, 0, "hello").bytes + Self.packet(3, 0).bytes
        // Byte by byte: a packet appears only once whole.
        var decoder = RconDecoder()
        var seen: [RconPacket] = []
        for byte in stream {
            decoder.append([byte])
            while let p = try decoder.next() { seen.append(p) }
        }
        #expect(seen == [Self.packet(2, 0, "hello"), Self.packet(3, 0)])
        // All at once, and a body with an inner NUL ends there.
        var joined = RconDecoder()
        joined.append(stream + Self.le(13, 9, 0) + [0x61, 0, 0x62, 0, 0])
        #expect(try joined.next() == Self.packet(2, 0, "hello"))
        #expect(try joined.next() == Self.packet(3, 0))
        #expect(try joined.next() == Self.packet(9, 0, "a"))
        #expect(try joined.next() == nil)
    }

    @Test func refusesHostileSizesAndFraming() {
        for bad: [UInt8] in [
            Self.le(-5, 1, 0), Self.le(Int32.min, 1, 0), Self.le(9, 1, 0) + [0], Self.le(0), Self.le(1 << 30, 1, 0),
            Self.le(RconPacket.maximumSize + 1), Self.le(10, 1, 0) + [0x41, 0x42],  // not NUL-terminated
            Array(repeating: 0xFF, count: 16),
        ] {
            var decoder = RconDecoder()
            decoder.append(bad)
            #expect(throws: RconError.self, "\(bad)") { _ = try decoder.next() }
        }
        // The largest allowed size waits for its bytes rather than failing.
        var big = RconDecoder()
        big.append(Self.le(RconPacket.maximumSize, 2, 0))
        #expect((try? big.next()) == .some(nil))
    }

    @Test func authenticatesThenCollectsAMultiPacketAnswer() throws {
        var exchange = try RconExchange(password: "pw", command: "status")
        #expect(exchange.greeting == RconPacket(id: 1, type: 3, body: Array("pw".utf8)).bytes)
        #expect(try exchange.receive(Self.packet(1, 0)) == .wait)  // srcds' empty value before the auth answer
        guard case .send(let bytes) = try exchange.receive(Self.packet(1, 2)) else {
            Issue.record("no command sent")
            return
        }
        #expect(bytes == Self.packet(2, 2, "status").bytes + Self.packet(3, 0).bytes)
        #expect(try exchange.receive(Self.packet(2, 0, "line one\n")) == .wait)
        #expect(try exchange.receive(Self.packet(2, 0, "line\u{1b}[31m two\r\n")) == .wait)
        #expect(try exchange.receive(Self.packet(3, 0)) == .finished(RconResponse(text: "line one\nline[31m two\n", truncated: false)))
    }

    @Test func wrongPasswordIsAClearError() throws {
        var exchange = try RconExchange(password: "nope", command: "status")
        _ = try exchange.receive(Self.packet(1, 0))
        #expect(throws: RconError.authFailed) { try exchange.receive(Self.packet(-1, 2)) }
        #expect(RconError.authFailed.code == "rcon.auth_failed")
    }

    @Test func refusesWrongIdsAndTypes() throws {
        func authed() throws -> RconExchange {
            var e = try RconExchange(password: "pw", command: "x")
            _ = try e.receive(Self.packet(1, 2))
            return e
        }
        for (packet, inAnswer) in [
            (Self.packet(7, 2), false), (Self.packet(2, 0, "early"), false), (Self.packet(1, 9), false),
            (Self.packet(9, 0, "x"), true), (Self.packet(2, 2, "x"), true), (Self.packet(Int32.max, 0), true),
        ] {
            var e = inAnswer ? try authed() : try RconExchange(password: "pw", command: "x")
            #expect(throws: RconError.self, "\(packet)") { try e.receive(packet) }
        }
        var e = try authed()
        #expect(throws: RconError.authFailed) { try e.receive(Self.packet(-1, 0)) }
        // Endless empty values before the auth answer are refused, not waited for.
        var chatty = try RconExchange(password: "pw", command: "x")
        #expect(throws: RconError.self) { for _ in 0..<100 { _ = try chatty.receive(Self.packet(1, 0)) } }
    }

    @Test func capsTheAnswer() throws {
        var e = try RconExchange(password: "pw", command: "flood", maximumBytes: 10_000)
        _ = try e.receive(Self.packet(1, 2))
        let chunk = String(repeating: "f", count: 4096)
        #expect(try e.receive(Self.packet(2, 0, chunk)) == .wait)
        #expect(try e.receive(Self.packet(2, 0, chunk)) == .wait)
        #expect(
            try e.receive(Self.packet(2, 0, chunk)) == .finished(RconResponse(text: String(repeating: "f", count: 10_000), truncated: true))
        )
        // Empty packets without end are cut too.
        var empty = try RconExchange(password: "pw", command: "x")
        _ = try empty.receive(Self.packet(1, 2))
        var step = RconExchange.Step.wait
        for _ in 0...RconExchange.maximumPackets where step == .wait { step = try empty.receive(Self.packet(2, 0)) }
        #expect(step == .finished(RconResponse(text: "", truncated: true)))
    }

    @Test func quietOrClosedConnections() throws {
        var silent = try RconExchange(password: "pw", command: "x")
        #expect(throws: RconError.timeout) { try silent.ended(closed: false) }
        var closed = try RconExchange(password: "pw", command: "x")
        #expect(throws: RconError.self) { try closed.ended(closed: true) }
        // A game that ignores the end marker still answered: its answer counts.
        var partial = try RconExchange(password: "pw", command: "x")
        _ = try partial.receive(Self.packet(1, 2))
        _ = try partial.receive(Self.packet(2, 0, "ok"))
        #expect(try partial.ended(closed: false) == RconResponse(text: "ok", truncated: false))
        var nothing = try RconExchange(password: "pw", command: "x")
        _ = try nothing.receive(Self.packet(1, 2))
        #expect(throws: RconError.timeout) { try nothing.ended(closed: false) }
        #expect(throws: RconError.self) { try RconExchange(password: "", command: "x") }
        #expect(throws: RconError.self) { try RconExchange(password: "a\0b", command: "x") }
        #expect(throws: RconError.self) { try RconExchange(password: "pw", command: String(repeating: "x", count: 5000)) }
    }

    @Test func planDeclarationAndResolution() throws {
        let groups = [[PortSpec(name: "PORT", port: 27015, proto: .both), PortSpec(name: "QUERY", port: 27016, proto: .udp)]]
        let settings = try Plan(
            document: JSON.parse(
                #"{"metadata": {"game_uid": "g", "image": "x:1"}, "volumes": {"~!/data": "/data"}, "environment": {"RCON_PORT": "25575", "RCON_PASSWORD": null}}"#
            ), expectedGameUID: GameUID(validating: "g")
        ).settings
        let parse = { (text: String) throws in try RconDeclaration.parse(JSON.parse(text), portGroups: groups, settings: settings) }
        #expect(try parse(#"{"port": "PORT", "password": "RCON_PASSWORD"}"#) == RconDeclaration(port: "PORT", password: "RCON_PASSWORD"))
        #expect(try parse(#"{"port": "RCON_PORT", "password": "RCON_PASSWORD"}"#) != nil)
        #expect(try RconDeclaration.parse(nil, portGroups: groups, settings: settings) == nil)
        for bad in [
            #"{"port": "QUERY", "password": "RCON_PASSWORD"}"#, #"{"port": "NOPE", "password": "RCON_PASSWORD"}"#,
            #"{"port": "PORT", "password": "NOPE"}"#, #"{"port": "PORT"}"#, #"[]"#, #""x""#,
            #"{"port": "PORT", "password": "RCON_PASSWORD", "host": "10.0.0.1"}"#, #"{"port": 1, "password": "RCON_PASSWORD"}"#,
        ] {
            #expect(throws: DomainError.self, "\(bad)") { try parse(bad) }
        }

        let declared = RconDeclaration(port: "RCON_PORT", password: "RCON_PASSWORD")
        #expect(try declared.resolve(ports: [], settings: [("RCON_PORT", "25575"), ("RCON_PASSWORD", "pw")]) == (25575, "pw"))
        #expect(
            try RconDeclaration(port: "PORT", password: "RCON_PASSWORD").resolve(ports: groups[0], settings: [("RCON_PASSWORD", "pw")]).port
                == 27015)
        for bad in [
            [("RCON_PORT", "0"), ("RCON_PASSWORD", "pw")], [("RCON_PORT", "x"), ("RCON_PASSWORD", "pw")], [("RCON_PORT", "1")],
            [("RCON_PORT", "1"), ("RCON_PASSWORD", "")], [("RCON_PORT", "99999"), ("RCON_PASSWORD", "pw")],
        ] {
            #expect(throws: RconError.self, "\(bad)") { try declared.resolve(ports: [], settings: bad) }
        }
        // The plan's defaults count where the server has no value of its own.
        #expect(try declared.resolve(ports: [], settings: [("RCON_PASSWORD", "pw")], defaults: settings) == (25575, "pw"))
        #expect(
            try declared.resolve(ports: [], settings: [("RCON_PORT", "30000"), ("RCON_PASSWORD", "pw")], defaults: settings).port == 30000)
    }

    static func plan(_ password: String) throws -> Plan {
        try Plan(
            document: JSON.parse(
                #"{"metadata": {"game_uid": "g", "image": "x:1", "rcon": {"port": "RCON_PORT", "password": "RCON_PASSWORD"}}, "#
                    + #""volumes": {"~!/data": "/data"}, "environment": {"RCON_PORT": "25575", "RCON_PASSWORD": \#(password)}}"#),
            expectedGameUID: GameUID(validating: "g"))
    }

    @Test func anOptionalRconPasswordLeftEmptyIsGenerated() throws {
        let optional = try Self.plan(#"{"type": "password", "required": false}"#)
        #expect(optional.rcon == RconDeclaration(port: "RCON_PORT", password: "RCON_PASSWORD"))
        let made = try ServerSettings.resolve(plan: optional, request: [:], secret: { "generated" })
        #expect(made.first { $0.0 == "RCON_PASSWORD" }?.1 == "generated")
        // The user's own, or one given before (modify), is kept; "" asks for a new one.
        let own = try ServerSettings.resolve(plan: optional, request: ["RCON_PASSWORD": "mine"], secret: { "generated" })
        #expect(own.first { $0.0 == "RCON_PASSWORD" }?.1 == "mine")
        let kept = try ServerSettings.resolve(plan: optional, request: [:], previous: own, secret: { "generated" })
        #expect(kept.first { $0.0 == "RCON_PASSWORD" }?.1 == "mine")
        let again = try ServerSettings.resolve(plan: optional, request: ["RCON_PASSWORD": ""], previous: own, secret: { "new" })
        #expect(again.first { $0.0 == "RCON_PASSWORD" }?.1 == "new")
        // Random: letters and digits, never the same twice.
        let a = ServerSettings.randomSecret()
        #expect(a.count == 24 && a.allSatisfy { $0.isLetter || $0.isNumber } && a != ServerSettings.randomSecret())
        // A required one stays required; a plan's default is the plan's choice.
        #expect(throws: DomainError.missingSettings(["RCON_PASSWORD"])) {
            try ServerSettings.resolve(plan: try Self.plan("null"), request: [:], secret: { "generated" })
        }
        #expect(try ServerSettings.resolve(plan: try Self.plan(#""default-pw""#), request: [:], secret: { "generated" }).isEmpty)
        // A plan naming what does not exist is refused whole.
        #expect(throws: PlanError.self) {
            try Plan(
                document: JSON.parse(
                    #"{"metadata": {"game_uid": "g", "image": "x:1", "rcon": {"port": "NOPE", "password": "X"}}, "volumes": {"~!/data": "/data"}}"#
                ),
                expectedGameUID: GameUID(validating: "g"))
        }
    }
}
