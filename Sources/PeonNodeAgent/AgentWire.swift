import PeonJSON
import PeonPlatform
import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Peon's node agent protocol, inside one connection (mutual TLS, or a unix socket beside the
/// scheduler) per operation or a few in turn: frames of
/// `kind (1 byte) · length (4 bytes, big-endian) · payload`.
///
/// The scheduler sends `Q` (the operation's JSON), then, for an operation that reads a stream,
/// `D` frames and an empty `E`. The agent answers, for an operation that writes a stream, `D`
/// frames, then `A` (the answer's JSON) or `F` (a `PlatformError`'s JSON). Every frame is bounded,
/// so neither side can be made to hold more than `maximumPayload` bytes of the other's.
enum AgentWire {
    enum Kind: UInt8 {
        case query = 0x51  // Q
        case data = 0x44  // D
        case end = 0x45  // E
        case answer = 0x41  // A
        case failure = 0x46  // F
    }

    /// A query carries plan actions (4 MiB at most, base64); an answer at most every node's manifests.
    static let maximumPayload = 64 << 20
    /// Stream blocks.
    static let blockSize = 256 << 10

    static func header(_ kind: Kind, _ count: Int) -> [UInt8] {
        let n = UInt32(count)
        return [kind.rawValue, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
    }

    /// Header and payload in one write (one TLS record, one system call each side for a query
    /// or an answer).
    static func write(_ stream: any ByteStream, _ kind: Kind, _ payload: [UInt8]) throws(TLSError) {
        try stream.write(header(kind, payload.count) + payload)
    }

    static func write(_ stream: any ByteStream, _ kind: Kind, json: JSON) throws(TLSError) { try write(stream, kind, json.bytes) }

    /// The next frame's kind and its payload's length, the payload left to read; nil when the peer
    /// closed the connection between frames.
    static func header(_ stream: any ByteStream) throws(TLSError) -> (Kind, Int)? {
        let first = UnsafeMutableRawBufferPointer.allocate(byteCount: 5, alignment: 1)
        defer { first.deallocate() }
        if try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: first[0..<1])) == 0 { return nil }
        var filled = 1
        while filled < 5 {
            let n = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: first[filled..<5]))
            guard n > 0 else { throw TLSError("the peer closed the connection inside a frame header") }
            filled += n
        }
        guard let kind = Kind(rawValue: first[0]) else { throw TLSError("unknown frame \(first[0])") }
        let length = Int(first[1]) << 24 | Int(first[2]) << 16 | Int(first[3]) << 8 | Int(first[4])
        guard length <= maximumPayload else { throw TLSError("frame of \(length) bytes") }
        return (kind, length)
    }

    /// The next frame's kind and payload; nil when the peer closed the connection between frames.
    static func read(_ stream: any ByteStream) throws(TLSError) -> (Kind, [UInt8])? {
        guard let (kind, length) = try header(stream) else { return nil }
        return (kind, length == 0 ? [] : try stream.read(exactly: length))
    }

    /// Copies a payload of `length` bytes from the stream to `fd` through `buffer` (no allocation
    /// per frame); false when `fd` is closed for writing (the payload is still read to its end).
    static func copy(_ length: Int, from stream: any ByteStream, to fd: Int32, through buffer: UnsafeMutableRawBufferPointer)
        throws(TLSError)
        -> Bool
    {
        var left = length
        var open = true
        while left > 0 {
            // A read answers one TLS record (16 KiB): fill the buffer before each write.
            let want = min(left, buffer.count)
            var n = 0
            while n < want {
                let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[n..<want]))
                guard got > 0 else { throw TLSError("the peer closed the connection inside a frame") }
                n += got
            }
            left -= n
            var offset = 0
            while open, offset < n {
                let w = Glibc.write(fd, buffer.baseAddress! + offset, n - offset)
                if w < 0, errno == EINTR { continue }
                guard w > 0 else {
                    open = false
                    break
                }
                offset += w
            }
        }
        return open
    }

    /// Copies `fd` to its end as `D` frames (header and data in one TLS record), then `E`.
    static func send(_ fd: Int32, to stream: any ByteStream) throws(TLSError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize + 5, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress! + 5, blockSize)
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw TLSError("reading the stream: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            for (i, byte) in header(.data, n).enumerated() { buffer[i] = byte }
            try stream.write(UnsafeRawBufferPointer(rebasing: buffer[..<(n + 5)]))
        }
        try write(stream, .end, [])
    }

    /// A pipe between an operation and a connection holds 1 MiB, so neither waits on the other's
    /// every 64 KiB (best effort: the system's limit may be lower).
    static func enlarge(_ fd: Int32) {
        let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ (Linux), not exported to Swift
        _ = fcntl(fd, setPipeSize, Int32(1 << 20))
    }

    /// Writes every byte to `fd`; false when it is closed for writing (the reader went away).
    static func copy(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }
}

/// A value handed to a thread that alone uses it meanwhile.
final class Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
