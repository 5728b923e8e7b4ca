#if canImport(Glibc)
    import Glibc
#endif

/// The database of one process: a connection, transactions and migrations.
///
/// `read` runs a deferred transaction under `PRAGMA query_only`, `write` runs `BEGIN IMMEDIATE`,
/// so no caller can express a read-then-write in a deferred transaction (which fails with
/// SQLITE_BUSY under concurrency whatever the busy timeout).
public final class Store {
    public let connection: Connection

    /// Opens (creating if needed) the database and applies pending migrations.
    ///
    /// Processes starting together on a fresh file race to turn it into WAL and migrate it; a
    /// few of those steps answer SQLITE_BUSY at once instead of waiting on `busy_timeout` (the
    /// switch to WAL, a connection opening while another recovers the WAL), so the whole opening
    /// is retried for a while before giving up.
    public init(path: String) throws {
        var attempt = 0
        while true {
            do {
                let connection = try Connection(path: path)
                try Migrator.migrate(connection)
                self.connection = connection
                return
            } catch StoreError.busy where attempt < 200 {
                attempt += 1
                usleep(25_000)
            }
        }
    }

    public func read<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.execute("PRAGMA query_only=1")
        defer { try? connection.execute("PRAGMA query_only=0") }
        return try connection.transaction("BEGIN", body)
    }

    @discardableResult
    public func write<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.transaction("BEGIN IMMEDIATE", body)
    }
}

extension Connection {
    /// Runs `body` between `begin` and COMMIT, rolling back when it throws.
    @discardableResult
    func transaction<T>(_ begin: String, _ body: (Transaction) throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body(Transaction(connection: self))
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

@available(*, unavailable)
extension Store: Sendable {}

/// The handle a transaction body gets; the record extensions in `Records/` hang off it.
public struct Transaction {
    let connection: Connection

    @discardableResult
    public func query(_ sql: String, _ arguments: [SQLValue] = []) throws(StoreError) -> [Row] {
        try connection.query(sql, arguments)
    }

    public var changes: Int { connection.changes }
}
