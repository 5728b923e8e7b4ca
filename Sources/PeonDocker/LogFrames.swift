/// One chunk of container output from a non-TTY stream.
public struct LogFrame: Sendable, Equatable {
    public enum Stream: UInt8, Sendable {
        case stdin = 0
        case stdout = 1
        case stderr = 2
    }
    public let stream: Stream
    public let payload: [UInt8]

    public init(stream: Stream, payload: [UInt8]) {
        self.stream = stream
        self.payload = payload
    }

    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// Demultiplexes Docker's log/attach stream: an 8-byte header `[stream, 0, 0, 0, size (u32 BE)]`
/// then the payload. Chunks may split anywhere, so bytes are buffered until a frame is whole.
public struct LogFrameDecoder: Sendable {
    private var buffer: [UInt8] = []

    public init() {}

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [LogFrame] {
        buffer.append(contentsOf: bytes)
        var frames: [LogFrame] = []
        var offset = 0
        while buffer.count - offset >= 8 {
            let size = buffer[offset + 4...offset + 7].reduce(0) { $0 << 8 | Int($1) }
            guard buffer.count - offset - 8 >= size else { break }
            let stream = LogFrame.Stream(rawValue: buffer[offset]) ?? .stdout
            frames.append(LogFrame(stream: stream, payload: Array(buffer[offset + 8..<offset + 8 + size])))
            offset += 8 + size
        }
        buffer.removeFirst(offset)
        return frames
    }

    /// Bytes of an incomplete frame still waiting for the rest.
    public var pending: Int { buffer.count }
}

extension LogFrame {
    /// The lines of a stream asked for with `timestamps=1` (each frame "<RFC 3339 nanoseconds>
    /// <text>", Docker splitting long lines itself), stdin left out; a frame without a readable
    /// timestamp gets `fallback`. A game's output is hostile input: see `cleanLine`.
    public static func timestampedLines(_ frames: [LogFrame], fallback: Int64) -> [(at: Int64, stream: Int, text: String)] {
        var lines: [(at: Int64, stream: Int, text: String)] = []
        for frame in frames where frame.stream != .stdin {
            let payload = frame.payload[...]
            let space = payload.firstIndex(of: UInt8(ascii: " ")) ?? payload.startIndex
            let at = DockerTime.milliseconds(Substring(decoding: payload[..<space], as: UTF8.self)) ?? fallback
            var body = payload[(space == payload.endIndex ? space : space + 1)...]
            while let last = body.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { body.removeLast() }
            for part in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lines.append((at, Int(frame.stream.rawValue), cleanLine(part)))
            }
        }
        return lines
    }

    /// One line cut at 4 KiB, control characters (but tabs) dropped, invalid UTF-8 replaced.
    public static func cleanLine(_ bytes: ArraySlice<UInt8>) -> String {
        let kept = bytes.prefix(4096).filter { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) }
        return String(decoding: kept, as: UTF8.self)
    }
}
