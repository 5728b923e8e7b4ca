import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore

extension JobRunner {
    /// The files API on the server's node (`ServerFileAccess` there): the path was checked by the
    /// API and is checked again by the node. A read's bytes become the job's payload; a write's
    /// come from it.
    func files(_ job: JobRecord, _ uid: ServerUID, _ request: JobRequest) throws -> JSON? {
        _ = try record(uid)
        let node = try platform.channel(for: uid)
        do {
            switch request {
            case .listFiles(let path):
                let (entries, truncated) = try node.listFiles(uid, path: path, limit: Self.maximumListing)
                return ["entries": .array(entries.map(\.json)), "truncated": .bool(truncated)]
            case .readFile(let path):
                let bytes = try node.readFile(uid, path: path, limit: configuration.fileMax)
                payload = bytes
                return ["size": .int(bytes.count)]
            case .writeFile(let path):
                guard let bytes = try store.read({ tx in try tx.jobPayload(job.id) }) else {
                    throw CodedFailure(code: .fileRefused, message: "the file to write was not stored with the job")
                }
                let (size, sha256) = try node.writeFile(uid, path: path, bytes: bytes)
                return ["size": .int(size), "sha256": .string(sha256)]
            case .deleteFile(let path):
                try node.deleteFile(uid, path: path)
                return ["deleted": true]
            default:
                return nil
            }
        } catch let error as ServerFileError {
            throw CodedFailure(code: JobFailureCode(error), message: error.detail)
        }
    }

    /// Entries of one folder listing (a game can fill a folder with hundreds of thousands).
    static let maximumListing = 10_000
}
