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
