import PeonCore
import Testing

/// The reconciler's table, without a store, an engine or a clock.
@Suite struct ReconcilerTests {
    let uid = try! ServerUID(validating: "valheim.one")
    let now: Int64 = 1_000_000

    func server(wantsRunning: Bool = true, observed: String = "running", ref: String? = "c1", expected: Bool = false) -> Reconciler.Desired
    {
        Reconciler.Desired(uid: uid, wantsRunning: wantsRunning, observed: observed, ref: ref, exitExpected: expected)
    }

    @Test func aCrashIsRecordedAndRestartedAfterTheBaseDelay() {
        #expect(
            Reconciler.exited(server(), state: .exited(code: 137, oom: false), crashes: [], now: now) == [
                .recordCrash(uid, exitCode: 137, oom: false, at: now), .restart(uid, notBefore: now + 2),
            ])
    }

    @Test func theDelayGrowsWithRecentCrashesThenPeonGivesUp() {
        #expect(
            Reconciler.exited(server(), state: .exited(code: 1, oom: false), crashes: [now - 10], now: now).last
                == .restart(uid, notBefore: now + 4))
        #expect(
            Reconciler.exited(server(), state: .exited(code: 1, oom: false), crashes: [now - 30, now - 20, now - 10], now: now).last
                == .giveUp(uid, state: "exited", reason: "crashed 4 times within 600 s"))
        // Crashes outside the window do not count.
        #expect(
            Reconciler.exited(server(), state: .exited(code: 1, oom: false), crashes: [now - 700, now - 650, now - 610], now: now).last
                == .restart(uid, notBefore: now + 2))
    }

    @Test func aCleanExitIsAStopAndAnOOMKillIsACrash() {
        #expect(
            Reconciler.exited(server(), state: .exited(code: 0, oom: false), crashes: [], now: now) == [.leaveStopped(uid, state: "exited")]
        )
        #expect(
            Reconciler.exited(server(), state: .exited(code: 0, oom: true), crashes: [], now: now).first
                == .recordCrash(uid, exitCode: 0, oom: true, at: now))
    }

    @Test func anExitAskedForOrOfAStoppedServerChangesNothing() {
        #expect(Reconciler.exited(server(expected: true), state: .exited(code: 1, oom: false), crashes: [], now: now).isEmpty)
        #expect(Reconciler.exited(server(wantsRunning: false), state: .exited(code: 1, oom: false), crashes: [], now: now).isEmpty)
        #expect(Reconciler.exited(server(), state: .running, crashes: [], now: now).isEmpty)
        var off = server()
        off.crashPolicy.enabled = false
        #expect(
            Reconciler.exited(off, state: .exited(code: 1, oom: false), crashes: [], now: now).last
                == .giveUp(uid, state: "exited", reason: "crash restarts are off for this server"))
    }

    @Test func theFullReconcileAppliesThePolicyToExitsNobodySaw() {
        let observed = [uid: Reconciler.Observed(ref: "c1", state: .exited(code: 3, oom: false))]
        #expect(
            Reconciler.compute(desired: [server()], observed: observed, crashes: [:], now: now) == [
                .observe(uid, state: "exited", ref: "c1"), .recordCrash(uid, exitCode: 3, oom: false, at: now),
                .restart(uid, notBefore: now + 2),
            ])
    }

    @Test func theFullReconcileRecordsMissingWorkloadsAndIgnoresForeignOnesAndUnknownExits() {
        #expect(
            Reconciler.compute(desired: [server()], observed: [:], crashes: [:], now: now) == [.observe(uid, state: "missing", ref: nil)])
        // Another workload than the one Peon made (an old container): its state is noted, its exit is not a crash.
        let other = [uid: Reconciler.Observed(ref: "c2", state: .exited(code: 1, oom: false))]
        #expect(
            Reconciler.compute(desired: [server()], observed: other, crashes: [:], now: now) == [.observe(uid, state: "exited", ref: "c2")])
        let listed = [uid: Reconciler.Observed(ref: "c1", state: .exited(code: 0, oom: false), exitKnown: false)]
        #expect(
            Reconciler.compute(desired: [server()], observed: listed, crashes: [:], now: now) == [.observe(uid, state: "exited", ref: "c1")]
        )
        let unchanged = [uid: Reconciler.Observed(ref: "c1", state: .running)]
        #expect(Reconciler.compute(desired: [server()], observed: unchanged, crashes: [:], now: now).isEmpty)
    }

    /// Seeded random worlds: whatever the inputs, one server gets at most one restart and never
    /// both a restart and a give-up, and nothing happens to a server that should not run.
    @Test func propertiesHoldOverRandomWorlds() {
        var rng = SplitMix(seed: 42)
        let states: [ObservedState] = [
            .running, .created, .exited(code: 0, oom: false), .exited(code: 1, oom: false), .exited(code: 0, oom: true), .dead, .missing,
            .nodeDown,
        ]
        for _ in 0..<2000 {
            let s = server(
                wantsRunning: rng.next() % 2 == 0, observed: "running", ref: rng.next() % 3 == 0 ? nil : "c1", expected: rng.next() % 4 == 0
            )
            let state = states[Int(rng.next() % UInt64(states.count))]
            let crashes = (0..<Int(rng.next() % 6)).map { _ in now - Int64(rng.next() % 900) }
            let actions = Reconciler.compute(
                desired: [s], observed: [uid: .init(ref: rng.next() % 5 == 0 ? "c9" : "c1", state: state)], crashes: [uid: crashes],
                now: now)
            let restarts = actions.filter { if case .restart = $0 { true } else { false } }.count
            let giveUps = actions.filter { if case .giveUp = $0 { true } else { false } }.count
            #expect(restarts + giveUps <= 1)
            if !s.wantsRunning || s.exitExpected { #expect(restarts + giveUps == 0) }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
