import PeonCore
import PeonJSON
import Testing

@Suite struct ReadyCheckTests {
    let groups = [
        [
            PortSpec(name: "PORT", port: 2456, proto: .udp), PortSpec(name: "QUERY", port: 2457, proto: .udp),
            PortSpec(name: "WEB", port: 80, proto: .tcp),
        ]
    ]

    func parse(_ text: String, rcon: Bool = false, readyLine: String? = nil) throws(DomainError) -> ReadyCheck {
        try ReadyCheck.parse(try? JSON.parse(Array(text.utf8)), portGroups: groups, hasRcon: rcon, readyLine: readyLine)
    }

    @Test func parsesEachProbe() throws {
        #expect(
            try parse(#"{"probe": "a2s", "port": "QUERY", "start_timeout": 900}"#)
                == ReadyCheck(probe: .network(.a2s, port: "QUERY"), startTimeoutSeconds: 900))
        #expect(try parse(#"{"probe": "luanti"}"#) == ReadyCheck(probe: .network(.luanti, port: nil)))
        #expect(try parse(#"{"probe": "tcp", "port": "WEB"}"#).probe == .network(.tcp, port: "WEB"))
        #expect(try parse(#"{"probe": "rcon"}"#, rcon: true).probe == .rcon)
        #expect(try parse(#"{"probe": "log", "line": "Game server connected"}"#).probe == .log("Game server connected"))
        #expect(try parse(#"{"probe": "running"}"#).probe == .running)
        #expect(try parse(#"{"probe": "a2s", "port": "QUERY"}"#).startTimeoutSeconds == ReadyCheck.defaultStartTimeout)
    }

    /// A stop while starting kills at once only where the probe asks as a client would, or where the
    /// plan's author set `stop.ready_line`; a `metadata.ready` log line keeps the grace.
    @Test func onlyClientProbesAndTheReadyLineStopAtOnceWhileStarting() throws {
        #expect(try parse(#"{"probe": "a2s", "port": "QUERY"}"#).stopsAtOnceWhileStarting)
        #expect(try parse(#"{"probe": "tcp", "port": "WEB"}"#).stopsAtOnceWhileStarting)
        #expect(try parse(#"{"probe": "rcon"}"#, rcon: true).stopsAtOnceWhileStarting)
        #expect(try !parse(#"{"probe": "log", "line": "Game server connected"}"#).stopsAtOnceWhileStarting)
        #expect(try !parse(#"{"probe": "running"}"#).stopsAtOnceWhileStarting)
        #expect(try ReadyCheck.parse(nil, portGroups: groups, hasRcon: false, readyLine: "listening on").stopsAtOnceWhileStarting)
        #expect(try !ReadyCheck.parse(nil, portGroups: groups, hasRcon: false, readyLine: nil).stopsAtOnceWhileStarting)
    }

    /// No `metadata.ready`: the stop's ready line is the probe when there is one, else none.
    @Test func withoutReadyTheReadyLineOrNothing() throws {
        #expect(try ReadyCheck.parse(nil, portGroups: groups, hasRcon: false, readyLine: "listening on").probe == .log("listening on"))
        #expect(try ReadyCheck.parse(nil, portGroups: groups, hasRcon: false, readyLine: nil).probe == .running)
        #expect(try ReadyCheck.parse(.null, portGroups: groups, hasRcon: false, readyLine: nil).probe == .running)
    }

    @Test(arguments: [
        #""a2s""#, #"{}"#, #"{"probe": "ping"}"#, #"{"probe": "a2s", "port": "NOPE"}"#, #"{"probe": "a2s", "port": "WEB"}"#,
        #"{"probe": "tcp", "port": "QUERY"}"#, #"{"probe": "tcp"}"#, #"{"probe": "a2s", "port": 2457}"#,
        #"{"probe": "a2s", "line": "x"}"#, #"{"probe": "log"}"#, #"{"probe": "log", "line": ""}"#, #"{"probe": "log", "line": "a\nb"}"#,
        #"{"probe": "log", "line": "x", "port": "PORT"}"#, #"{"probe": "rcon"}"#, #"{"probe": "running", "start_timeout": 4}"#,
        #"{"probe": "running", "start_timeout": 7201}"#, #"{"probe": "running", "start_timeout": "60"}"#,
        #"{"probe": "running", "start_timeout": 1.5}"#, #"{"probe": "running", "extra": 1}"#,
    ])
    func refusesWhatIsNotAProbe(_ text: String) {
        #expect(throws: DomainError.self) { try parse(text) }
    }

    @Test func aProbesPortIsFoundByNameAmongTheServersPorts() throws {
        let ports = [PortSpec(name: "PORT", port: 40000, proto: .udp), PortSpec(name: "QUERY", port: 40001, proto: .udp)]
        #expect(try parse(#"{"probe": "a2s", "port": "QUERY"}"#).port(in: ports)?.port == 40001)
        #expect(try parse(#"{"probe": "luanti"}"#).port(in: ports)?.port == 40000)
        #expect(try parse(#"{"probe": "log", "line": "x"}"#).port(in: ports) == nil)
    }

    @Test func serverStateSaysStartingUntilReady() {
        #expect(Readiness.serverState(containerState: "running", startedAt: 100, readyAt: nil, failed: false) == "starting")
        #expect(Readiness.serverState(containerState: "running", startedAt: 100, readyAt: 150, failed: false) == "running")
        #expect(Readiness.serverState(containerState: "running", startedAt: 200, readyAt: 150, failed: false) == "starting")
        #expect(Readiness.serverState(containerState: "running", startedAt: 100, readyAt: nil, failed: true) == "start_failed")
        #expect(Readiness.serverState(containerState: "exited", startedAt: 100, readyAt: nil, failed: true) == "exited")
        // Started before Peon kept readiness: ready.
        #expect(Readiness.serverState(containerState: "running", startedAt: nil, readyAt: nil, failed: false) == "running")
    }
}

@Suite struct LuantiPacketTests {
    /// A server's answer to the probe: reliable SET_PEER_ID for peer 0x1234 (as Luanti 5 sends it).
    let setPeer: [UInt8] = [0x4F, 0x45, 0x74, 0x03, 0x00, 0x01, 0x00, 0x03, 0xFF, 0xDC, 0x00, 0x01, 0x12, 0x34]

    @Test func readsTheAssignedPeerAndSaysGoodbyeToIt() {
        #expect(LuantiPacket.isServerPacket(setPeer))
        #expect(LuantiPacket.assignedPeer(setPeer) == 0x1234)
        #expect(LuantiPacket.assignedPeer([0x4F, 0x45, 0x74, 0x03, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x07]) == 7)
        // An ack is the server's too, but assigns nothing.
        let ack: [UInt8] = [0x4F, 0x45, 0x74, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xDC]
        #expect(LuantiPacket.isServerPacket(ack) && LuantiPacket.assignedPeer(ack) == nil)
        #expect(LuantiPacket.disconnect(peer: 0x1234) == [0x4F, 0x45, 0x74, 0x03, 0x12, 0x34, 0x00, 0x00, 0x03])
        #expect(!LuantiPacket.isServerPacket(Array("HTTP/1.1 200 OK".utf8)))
        #expect(!LuantiPacket.isServerPacket([0x4F, 0x45, 0x74, 0x03, 0x00, 0x01]))
    }
}
