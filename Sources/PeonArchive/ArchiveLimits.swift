/// Bounds of one extraction.
public struct ArchiveLimits: Sendable, Equatable {
    /// Entries of any kind (files, folders, refused ones) read from the archive.
    public var maximumEntries: Int
    /// Bytes actually written to disk, whatever the headers claim.
    public var maximumBytes: Int

    public init(maximumEntries: Int = 20_000, maximumBytes: Int = 512 << 20) {
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
    }
}
