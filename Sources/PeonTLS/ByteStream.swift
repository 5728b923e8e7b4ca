/// A connection to a node agent as the agent protocol uses it: blocking reads and writes, each
/// bounded by the stream's timeout; after any error the stream is unusable. `TLSStream` across a
/// network, `UnixStream` beside the scheduler on the same host. Not shared between threads.
public protocol ByteStream: AnyObject {
    /// Writes every byte, or throws.
    func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError)
    /// Up to `buffer.count` bytes; 0 when the peer closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int
    /// The timeout of each following read and write; 0 or less waits forever.
    func setTimeout(milliseconds: Int32)
    /// Nothing waits to be read and the peer has not closed: the connection can carry another request.
    var isQuiet: Bool { get }
    func close()
}

extension ByteStream {
    public func write(_ bytes: [UInt8]) throws(TLSError) {
        let result: Result<Void, TLSError> = bytes.withUnsafeBytes { raw in
            do throws(TLSError) { return .success(try write(raw)) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Exactly `count` bytes, or throws (an early end is an error).
    public func read(exactly count: Int) throws(TLSError) -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let result: Result<Int, TLSError> = bytes.withUnsafeMutableBytes { raw in
                do throws(TLSError) {
                    return .success(try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...])))
                } catch { return .failure(error) }
            }
            let got = try result.get()
            guard got > 0 else { throw TLSError("the peer closed the connection after \(filled) of \(count) bytes") }
            filled += got
        }
        return bytes
    }
}
