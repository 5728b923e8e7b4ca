public import ArgumentParser
import PeonAPI
public import PeonCore
import PeonNodeAgent
import PeonStore
import PeonSystem
import PeonTLS

/// `peon`: the administration CLI. Works on the same SQLite file as the running stack.
@main
struct Peon: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer a Peon installation.",
        discussion: """
            `key`, `agent-keys` and `migrate` work on the database (--data-dir). The server verbs talk to a running API, found \
            with --url/--key, else PEON_URL/PEON_API_KEY, else ~/.config/peon/config (`url = …` and `key = …` lines, \
            mode 0600). On the stack's own host the certificate in the data folder's tls/ is trusted without \
            --insecure when --data-dir or $PEON_DATA_DIR names that folder by absolute path (never the \
            current folder). http:// URLs, which send the key unencrypted, need --allow-http.

            Exit codes: 0 done; 1 the API refused or the job failed; 2 not supported by this server; 3 the API \
            cannot be reached, or the URL, key or config file is unusable; 64 bad usage.
            """,
        subcommands: [
            Key.self, AgentKeysCommand.self, Migrate.self, Servers.self, Plans.self, Create.self, Start.self, Stop.self, Restart.self,
            Update.self, Logs.self,
            Backup.self, Restore.self,
        ])
}

/// Where the database is; shared by every subcommand.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory (default: $PEON_DATA_DIR or ./var).")
    var dataDir: String?

    /// Opens the installation's database; only `migrate` may create one, so a mistyped
    /// `--data-dir` is an error instead of a new empty installation.
    func openStore(create: Bool = false) throws -> Store {
        let dir = dataDir ?? ProcessEnvironment.read(["PEON_DATA_DIR"])["PEON_DATA_DIR"] ?? "./var"
        Files.restrictUmask()
        if !create, Files.kind(dir + "/peon.db") != .file {
            throw ValidationError("no Peon database at \(dir)/peon.db (set --data-dir or PEON_DATA_DIR, or run `peon migrate`)")
        }
        try Files.makeDirectories(dir)
        return try Store(path: dir + "/peon.db")
    }
}

extension Scope: ExpressibleByArgument {}

extension Peon {
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list and revoke API keys.", subcommands: [Create.self, List.self, Revoke.self])
    }

    struct AgentKeysCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agent-keys", abstract: "The keys of the mutual TLS between the scheduler and Peon's node agents.",
            subcommands: [Rotate.self])

        struct Rotate: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a new CA and certificates; the running scheduler takes them within seconds and redeploys the agents.")
            @OptionGroup var data: DataOptions

            func run() throws {
                let store = try data.openStore()
                let keys = try AgentCredentials.make()
                try store.write { tx in try tx.setMeta("agent.credentials", keys.json.text) }
                let expiry = Certificates.expiry(keys.agent.certificate).map { WallClock.iso8601($0) } ?? "?"
                print("new node agent keys stored (agent certificate valid until \(expiry))")
            }
        }
    }

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending database migrations.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let store = try data.openStore(create: true)
            print("schema: \(try Migrator.applied(store.connection).joined(separator: ", "))")
        }
    }
}

extension Peon.Key {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once and stored only as a hash.")
        @OptionGroup var data: DataOptions
        @Option(help: "read, operate or admin.") var scope: Scope
        @Option(help: "A note to recognise the key by.") var label: String = ""
        @Option(help: "When the key stops working: epoch seconds or ISO 8601, e.g. 2030-01-01T00:00:00Z.") var expiresAt: String?

        func validate() throws {
            guard APIKeys.isValidLabel(label) else {
                throw ValidationError("--label must be one line of at most 100 characters, without control characters")
            }
            if let expiresAt { _ = try expiry(expiresAt) }
        }

        func expiry(_ text: String) throws -> Int64 {
            guard let at = Timestamp.parse(text), at > WallClock.now() else {
                throw ValidationError("--expires-at must be a future time: epoch seconds or ISO 8601 (2030-01-01T00:00:00Z)")
            }
            return at
        }

        func run() throws {
            let store = try data.openStore()
            let expires = try expiresAt.map(expiry)
            let (id, key) = try store.write { tx in
                try APIKeys.create(in: tx, scope: scope, label: label, expiresAt: expires, now: WallClock.now())
            }
            print("id:    \(id)\nscope: \(scope.rawValue)\nkey:   \(key)")
            if let expires { print("expires: \(WallClock.iso8601(expires))") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secret).")
        @OptionGroup var data: DataOptions

        func run() throws {
            let store = try data.openStore()
            let keys = try store.read { tx in try tx.listKeys() }
            print("ID                PREFIX     SCOPE    STATE    CREATED               LAST USED             EXPIRES               LABEL")
            let now = WallClock.now()
            for k in keys {
                let state = k.revokedAt != nil ? "revoked" : (k.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active"
                print(
                    [
                        k.id.padded(17), k.prefix.padded(10), k.scope.rawValue.padded(8), state.padded(8),
                        WallClock.iso8601(k.createdAt).padded(21), (k.lastUsedAt.map(WallClock.iso8601) ?? "never").padded(21),
                        (k.expiresAt.map(WallClock.iso8601) ?? "never").padded(21), k.label,
                    ].joined(separator: " "))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id; it stops working at once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The key id, as `peon key list` shows it.") var id: String

        func run() throws {
            let store = try data.openStore()
            switch try store.write({ tx in try tx.revokeKey(id: id, now: WallClock.now()) }) {
            case .revoked: print("revoked \(id)")
            case .notFound: throw ValidationError("no active key with id \(id)")
            case .lastAdmin:
                throw CLIError(
                    "refusing to revoke \(id): it is the last admin key. Create another first: peon key create --scope admin")
            }
        }
    }
}

/// A refusal printed as `Error: <message>` with a non-zero exit, without the usage text.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
