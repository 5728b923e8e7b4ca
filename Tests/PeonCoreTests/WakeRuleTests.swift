import PeonCore
import PeonJSON
import Testing

@Suite struct WakeRuleTests {
    let client = IPAddress("192.0.2.7")!
    let luanti = WakeRule(client: .luanti, ignore: [CIDR("198.51.100.0/24")!], name: "Valley", maxPlayers: 20)
    let steam = WakeRule(client: .a2s, ignore: [], name: "Ark\u{0} of friends", maxPlayers: 70)
    let key: [UInt8] = [9, 8, 7, 6]
    let hello: [UInt8] = LuantiPacket.protocolID + [0x00, 0x00, 0x00, 0x03, 0xFF, 0xDC, 0x01, 0x00, 0x02]

    /// A real client's first packet wakes; a stray one only counts, and a second from the same
    /// address within the confirmation window wakes; later, it counts again from one.
    @Test func aClientWakesAScanDoesNot() {
        #expect(luanti.datagram(hello, from: client, lastSeen: nil, now: 100, challenge: key) == .wake)
        #expect(luanti.datagram(Array("GET / HTTP/1.0".utf8), from: client, lastSeen: nil, now: 100, challenge: key) == .note)
        #expect(luanti.datagram([0x00], from: client, lastSeen: 97, now: 100, challenge: key) == .wake)
        #expect(luanti.datagram([0x00], from: client, lastSeen: 90, now: 100, challenge: key) == .note)
        #expect(
            luanti.datagram(LuantiPacket.probe, from: client, lastSeen: nil, now: 100, challenge: key) == .note,
            "the server list's probe is not a player")
        // Ignored addresses never wake, whatever they send.
        let monitor = IPAddress("198.51.100.9")!
        #expect(luanti.datagram(hello, from: monitor, lastSeen: 99, now: 100, challenge: key) == .ignore)
        #expect(luanti.connection(from: monitor, sentBytes: 10, openSeconds: 60) == false)
    }

    /// A2S_INFO is answered while asleep (challenge first, as current servers do), never a wake;
    /// the name says the server sleeps; NUL bytes in a name cannot cut the reply short.
    @Test func a2sIsAnsweredWhileAsleep() {
        guard case .answer(let challenge) = steam.datagram(PlayerQuery.a2sRequest(), from: client, lastSeen: 99, now: 100, challenge: key)
        else {
            Issue.record("no challenge")
            return
        }
        #expect(PlayerQuery.a2sChallenge(challenge) == key)
        // A wrong challenge (a forged source never saw the right one) gets the challenge again.
        let forged = steam.datagram(PlayerQuery.a2sRequest(challenge: [1, 2, 3, 4]), from: client, lastSeen: 99, now: 100, challenge: key)
        #expect(forged == .answer(challenge))
        guard
            case .answer(let reply) = steam.datagram(
                PlayerQuery.a2sRequest(challenge: key), from: client, lastSeen: 99, now: 100, challenge: key)
        else {
            Issue.record("no answer")
            return
        }
        #expect(PlayerQuery.a2sInfo(reply).map { [$0.players, $0.max] } == [0, 70])
        #expect(reply[6...].starts(with: Array("Ark of friends (sleeping)".utf8) + [0]))
        // Where the plan does not speak A2S, a query is any datagram.
        #expect(luanti.datagram(PlayerQuery.a2sRequest(), from: client, lastSeen: nil, now: 100, challenge: key) == .note)
    }

    /// A connection wakes once it sends a byte or stays open; one opened and closed does not.
    @Test func aConnectionWakesOnceItSpeaksOrStays() {
        #expect(steam.connection(from: client, sentBytes: 0, openSeconds: 0.1) == nil)
        #expect(steam.connection(from: client, sentBytes: 1, openSeconds: 0.1) == true)
        #expect(steam.connection(from: client, sentBytes: 0, openSeconds: WakeRule.confirmSeconds) == true)
    }

    /// The hold crosses the wire unchanged; a bad one is refused; `wake_on_connect` takes only booleans.
    @Test func wireFormAndRequestField() throws {
        let rule = WakeRule(client: .luanti, ignore: [CIDR("10.0.0.0/8")!], name: "n", maxPlayers: 3)
        #expect(WakeRule(json: rule.json) == rule)
        #expect(WakeRule(json: ["client": "http", "name": "n", "max_players": 1]) == nil)
        #expect(WakeRule(json: ["client": .null, "name": "n", "max_players": 1, "ignore": ["not a range"]]) == nil)
        #expect(WakeRule(client: nil, ignore: [], name: String(repeating: "x", count: 500), maxPlayers: 10_000).name.count == 64)
        #expect(try WakeOnConnect.parse(nil) == nil)
        #expect(try WakeOnConnect.parse(.bool(true)) == true)
        for bad: JSON in [.null, "true", 1, [], ["on": true]] {
            #expect(throws: DomainError.self) { try WakeOnConnect.parse(bad) }
        }
    }

    /// Whoever decides a server's state ends its sleep; its idle stop and its backups do not.
    @Test func whichJobsEndASleep() {
        #expect(JobRequest.start.endsSleep && JobRequest.stop(reason: nil).endsSleep && JobRequest.restart.endsSleep)
        #expect(!JobRequest.stop(reason: .idle).endsSleep && !JobRequest.backup(.tarZstd).endsSleep)
        #expect(Readiness.serverState(containerState: "exited", startedAt: nil, readyAt: nil, failed: false, sleeping: true) == "sleeping")
        #expect(Readiness.serverState(containerState: "running", startedAt: 1, readyAt: 2, failed: false, sleeping: true) == "running")
    }
}
