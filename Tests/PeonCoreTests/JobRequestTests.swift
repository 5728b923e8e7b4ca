import PeonCore
import PeonJSON
import Testing

/// The one job contract: every request survives its stored form, and a stored job that is not
/// exactly one of them (unknown key, unknown value, wrong type) is refused, never defaulted.
@Suite struct JobRequestTests {
    static let all: [JobRequest] = [
        .create(start: true, noclean: false), .create(start: false, noclean: true), .start, .stop(reason: nil), .stop(reason: .idle),
        .restart, .update(.validate), .destroy(eradicate: true, deleteBackups: false),
        .destroy(eradicate: true, deleteBackups: true), .destroy(eradicate: false, deleteBackups: false),
        .eradicate(deleteBackups: false), .eradicate(deleteBackups: true), .adopt, .console(command: "say `hi`; rm -rf /"),
        .backup(.tarZstd), .backup(.zip), .restore(backup: 7), .deleteBackup(backup: 8), .pruneBackups,
        .listFiles(path: nil), .listFiles(path: try! ServerFilePath(validating: "user/mods")),
        .readFile(path: try! ServerFilePath(validating: "config/a b.cfg")), .writeFile(path: try! ServerFilePath(validating: "user/x")),
        .deleteFile(path: try! ServerFilePath(validating: "config/old")),
    ]

    @Test(arguments: all) func survivesItsStoredForm(_ request: JobRequest) throws {
        let stored = try JSON.parse(request.arguments.text)
        #expect(try JobRequest(kind: request.kind, arguments: stored) == request)
    }

    @Test func refusesWhatItDoesNotKnow() {
        let refused: [(JobKind, JSON)] = [
            (.backup, ["format": "rar"]), (.backup, [:]), (.backup, ["format": "zip", "level": 9]),
            (.update, ["mode": "everything"]), (.update, [:]), (.restore, ["id": "7"]), (.restore, ["id": 0]),
            (.restore, ["id": .number(1.5)]),
            (.deleteBackup, [:]), (.console, ["command": 5]), (.console, [:]), (.destroy, ["eradicate": "yes"]),
            (.stop, ["reason": "bored"]), (.start, ["now": true]), (.create, ["start": "true"]), (.adopt, ["all": true]),
            (.pruneBackups, ["keep": 1]), (.start, .array([])), (.destroy, ["eradicate": false, "delete_backups": true]),
            (.eradicate, ["delete_backups": "yes"]), (.eradicate, ["eradicate": true]),
            (.readFile, [:]), (.readFile, ["path": "../etc/passwd"]), (.writeFile, ["path": "/etc/passwd"]),
            (.deleteFile, ["path": "data/world"]), (.listFiles, ["path": 5]), (.readFile, ["path": "config/x", "mode": "raw"]),
        ]
        for (kind, arguments) in refused {
            #expect(throws: DomainError.self, "\(kind) \(arguments.text)") { try JobRequest(kind: kind, arguments: arguments) }
        }
    }

    @Test func failureCodesAreTheAPIsCodes() {
        #expect(JobFailureCode(RconError.authFailed).rawValue == RconError.authFailed.code)
        #expect(JobFailureCode(RconError.timeout).rawValue == RconError.timeout.code)
        // The status the API answers each with: a game's or a path's refusal is a conflict, a node away 503.
        #expect(JobFailureCode(RconError.unreachable("x")).status == 409 && JobFailureCode.nodeUnavailable.status == 503)
        #expect(JobFailureCode(ServerFileError.refused("x")).status == 409 && JobFailureCode(ServerFileError.notFound("x")).status == 404)
        #expect(JobFailureCode(ServerFileError.tooLarge("x")).status == 413 && JobFailureCode.serverExists.status == 409)
    }

    /// A destroy queued before `delete_backups` existed still runs, keeping the backups.
    @Test func anOlderDestroyKeepsItsBackups() throws {
        #expect(try JobRequest(kind: .destroy, arguments: ["eradicate": true]) == .destroy(eradicate: true, deleteBackups: false))
        #expect(try JobRequest(kind: .eradicate, arguments: [:]) == .eradicate(deleteBackups: false))
    }
}
