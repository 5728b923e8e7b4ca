import PeonCore
import PeonJSON
import PeonPlatform
import PeonTestSupport
import Testing

/// The in-memory platform keeps the same contract as Docker and Swarm.
@Suite struct FakePlatformTests {
    static let planText = #"""
        {"metadata": {"game_uid": "peontest", "image": "peon-test-game:latest"}, "ports": [[{"PORT": ["27960", "tcp"]}]],
         "environment": {"SERVER_NAME": null}, "volumes": {"~!/data": "/data"}}
        """#

    func spec(_ platform: FakePlatform, name: String = "one", port: Int = 27960) throws -> (ServerSpec, Plan) {
        let plan = try Plan(document: JSON.parse(Array(Self.planText.utf8)), expectedGameUID: GameUID(validating: "peontest"))
        let uid = try ServerUID(validating: "peontest.\(name)")
        let spec = ServerSpec(
            uid: uid, plan: plan, settings: [("SERVER_NAME", "x")], ports: [PortSpec(name: "PORT", port: port, proto: .tcp)],
            directory: "/fake/servers/peontest/\(name)")
        return (spec, plan)
    }

    @Test func keepsThePlatformContract() throws {
        let platform = FakePlatform()
        platform.images.insert("peon-test-game:latest")
        let (spec, plan) = try spec(platform)
        #expect(PlatformContract(platform: platform, spec: spec, plan: plan, patience: 0).run() == [])
    }

    @Test func reportsExitsAsTypedEvents() throws {
        let platform = FakePlatform()
        platform.images.insert("peon-test-game:latest")
        let (spec, _) = try spec(platform)
        let ref = try platform.ensure(spec)
        try platform.start(ref)
        platform.exit(spec.uid, code: 137, oom: true)
        var kinds: [PlatformEvent.Kind] = []
        try platform.followEvents(keepGoing: { true }) { event in
            kinds.append(event.kind)
            return true
        }
        #expect(kinds == [.created, .started, .oomKilled, .exited(code: 137)])
        #expect(try platform.details(ref).state == .exited(code: 137, oom: true))
    }

    @Test func aTakenPortRefusesTheStartWithAConflict() throws {
        let platform = FakePlatform()
        platform.images.insert("peon-test-game:latest")
        platform.foreignPorts = [PortKey(27960, .tcp)]
        let (spec, plan) = try spec(platform)
        let ref = try platform.ensure(spec)
        #expect(throws: PlatformError.conflict("port 27960/tcp is already allocated")) { try platform.start(ref) }
        let other = ServerSpec(
            uid: try ServerUID(validating: "peontest.two"), plan: plan, settings: [], ports: [], directory: "/x", image: "nope")
        #expect(throws: PlatformError.notFound("no image nope")) { try platform.ensure(other) }
    }
}
