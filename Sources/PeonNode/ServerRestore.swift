import PeonArchive
import PeonCore
import PeonJSON
import PeonPlatform
import PeonSystem
import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Backups and restores of one server's folders on its node: `actions`, `config` and `user` (never
/// `data`, the game install).
///
/// A restore reads the archive once, into a staging folder beside the live folders, while the
/// server still runs; the bytes extracted are the bytes checksummed. Only a staged restore whose
/// checksum matches is swapped in, folder by folder by rename, once the server is stopped.
struct ServerRestore {
    static let folders = ["actions", "config", "user"]

    let files: LocalServerFiles
    let uid: ServerUID

    var dir: String { files.directory(uid) }

    static func staging(_ id: Int64) -> String { ".restore-\(id)" }

    /// Streams the archive to `output`.
    func archive(format: ArchiveWriter.Format, to output: Int32) throws(PlatformError) -> JSON {
        guard Files.kind(dir) == .directory else { throw .notFound("server \(uid) has no folder on this node") }
        do {
            let summary = try ArchiveWriter.write(root: dir, folders: Self.folders, toDescriptor: output, format: format)
            return ["files": .int(summary.files), "bytes": .int(summary.bytes)]
        } catch {
            throw .refused("cannot archive the server's folders: \(error)")
        }
    }

    /// Extracts the archive read from `input` into the staging folder (links, devices, absolute
    /// paths and `..` refuse it) and checks its checksum; on any failure nothing is left behind.
    func stage(backup id: Int64, sha256: String, from input: Int32) throws(PlatformError) {
        guard Files.kind(dir) == .directory else { throw .notFound("server \(uid) has no folder on this node") }
        Self.removeLeftovers(in: dir)
        let staging = Self.staging(id)
        let checksum = Checksum()
        var failure: (any Error)?
        do {
            try ArchiveExtractor.extract(
                descriptor: input, into: dir + "/" + staging, limits: ArchiveLimits(maximumEntries: 1_000_000, maximumBytes: 1 << 40),
                observe: { checksum.update($0) })
        } catch {
            failure = error
        }
        let (digest, size) = checksum.finalize()
        if let failure, size == 0 {  // not read at all: no checksum to compare
            discard(backup: id)
            throw .refused("cannot read backup \(id): \(failure)")
        }
        guard digest == sha256 else {
            discard(backup: id)
            throw .refused("backup \(id) does not match its checksum: it changed since it was made")
        }
        if let failure {
            discard(backup: id)
            throw .refused("backup \(id) cannot be restored: \(failure)")
        }
        do {
            for folder in Self.folders where Files.kind(dir + "/" + staging + "/" + folder) == .directory {
                try Files.chownTree(dir + "/" + staging + "/" + folder, uid: 1000, gid: 1000)
            }
        } catch {
            discard(backup: id)
            throw .refused("cannot give the restored files to the game: \(error)")
        }
    }

    /// Swaps each staged folder in by rename; a folder set aside but not replaced goes back when a
    /// rename fails. The replaced folders are deleted afterwards, off the caller's path.
    func swap(backup id: Int64) throws(PlatformError) {
        let staging = Self.staging(id)
        guard Files.kind(dir + "/" + staging) == .directory else { throw .notFound("no staged restore of backup \(id)") }
        let folders = Self.folders.filter { Files.kind(dir + "/" + staging + "/" + $0) == .directory }
        var old: [String] = []
        do {
            for folder in folders {
                let aside = ".old-\(folder)-\(id)-\(Self.randomHex(4))"
                if Files.kind(dir + "/" + folder) != .missing {
                    try Files.rename(dir + "/" + folder, to: dir + "/" + aside)
                    old.append(aside)
                }
                try Files.rename(dir + "/" + staging + "/" + folder, to: dir + "/" + folder)
            }
        } catch {
            for folder in folders where Files.kind(dir + "/" + folder) == .missing {
                if let aside = old.first(where: { $0.hasPrefix(".old-\(folder)-") }) {
                    try? Files.rename(dir + "/" + aside, to: dir + "/" + folder)
                }
            }
            discard(backup: id)
            throw .refused("cannot swap the restored folders in: \(error)")
        }
        discard(backup: id)
        // A big world takes a while to delete; a process that ends first leaves the folders to the
        // next restore's `removeLeftovers`.
        if !old.isEmpty { ThreadHandle.detach { [old, dir] in for name in old { try? Files.removeTree(name, in: dir) } } }
    }

    func discard(backup id: Int64) {
        try? Files.removeTree(Self.staging(id), in: dir)
    }

    /// Staging and replaced folders an interrupted restore left. A folder set aside whose live
    /// folder is missing (the process ended between the two renames) is put back, not deleted.
    static func removeLeftovers(in dir: String) {
        for name in Files.list(dir) where name.hasPrefix(".restore-") || name.hasPrefix(".old-") {
            if let folder = folders.first(where: { name.hasPrefix(".old-\($0)-") }), Files.kind(dir + "/" + folder) == .missing,
                (try? Files.rename(dir + "/" + name, to: dir + "/" + folder)) != nil
            {
                continue
            }
            try? Files.removeTree(name, in: dir)
        }
    }

    static func randomHex(_ bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let text = String(UInt8.random(in: 0...255, using: &rng), radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
    }
}

/// SHA-256 and size of bytes seen in order on one thread (the archive's reader), read once it ended.
public final class Checksum: @unchecked Sendable {  // `update` runs on the feeder thread only, `finalize` after it ended
    // OpenSSL's: the node agent links no second crypto library (nor Foundation through one).
    private let digest = SHA256Digest()

    public init() {}

    public func update(_ bytes: UnsafeRawBufferPointer) { digest.update(bytes) }

    public func finalize() -> (String, Int64) { (digest.finalize(), digest.count) }
}
