import PeonDocker
import Testing

@Suite struct LogFramesTests {
    func frame(_ stream: UInt8, _ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let n = UInt32(payload.count)
        return [stream, 0, 0, 0, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload
    }

    @Test func decodesFramesSplitAnywhere() {
        let bytes = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "")
        for cut in 0...bytes.count {
            var decoder = LogFrameDecoder()
            let frames = decoder.feed(bytes[..<cut]) + decoder.feed(bytes[cut...])
            #expect(
                frames == [
                    LogFrame(stream: .stdout, payload: Array("hello\n".utf8)), LogFrame(stream: .stderr, payload: Array("oops\n".utf8)),
                    LogFrame(stream: .stdout, payload: []),
                ])
            #expect(decoder.pending == 0)
        }
    }

    @Test func keepsAnIncompleteFrame() {
        var decoder = LogFrameDecoder()
        #expect(decoder.feed(frame(1, "abc").prefix(9)).isEmpty)
        #expect(decoder.pending == 9)
    }

    @Test(
        arguments: [
            ("1.41", nil, "1.41"), ("1.45", "1.24", "1.45"), ("1.51", "1.44", "1.47"), ("1.40", nil, nil), ("1.52", "1.48", nil),
            ("x", nil, nil),
        ] as [(String, String?, String?)])
    func negotiatesTheAPIVersion(_ newest: String, _ oldest: String?, _ expected: String?) {
        #expect(DockerAPIVersion.negotiate(engineNewest: newest, engineOldest: oldest) == expected)
    }

    @Test func labelFilterIsJSON() {
        #expect(DockerClient.labelFilter(["peon.managed=true"]) == #"{"label":["peon.managed=true"]}"#)
    }
}

@Suite struct DockerTimeTests {
    @Test func readsDockersTimestamps() {
        #expect(DockerTime.milliseconds("1970-01-02T00:00:00Z") == 86_400_000)
        #expect(DockerTime.milliseconds("2026-11-29T21:10:00.123456789Z") == 1_795_986_600_123)
        #expect(DockerTime.milliseconds("2000-02-29T12:00:00.5Z") == 951_825_600_500)
    }

    @Test(arguments: [
        "", "0001-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-29 21:10:00Z", "2026-11-29T21:10:00.Z",
        "2026-11-29T21:10:00+01:00", "2026-11-29T21:10:00.12a4Z", String(repeating: "9", count: 40),
    ])
    func refusesWhatIsNotOne(_ text: String) {
        #expect(DockerTime.milliseconds(text[...]) == nil)
    }

    @Test func sinceKeepsMilliseconds() {
        #expect(DockerTime.since(milliseconds: 1_795_986_600_123) == "1795986600.123000000")
        #expect(DockerTime.since(milliseconds: 5) == "0.005000000")
    }
}
