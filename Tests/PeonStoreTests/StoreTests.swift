import PeonCore
import PeonStore
import PeonSystem
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory under /tmp for one test, removed when the test's suite value goes away.
final class TemporaryDirectory {
    let path: String
    init() {
        var template = Array("/tmp/peon-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? Files.removeTree(path) }
}

@Suite struct StoreTests {
    let temporary = TemporaryDirectory()
    func temporaryDirectory() -> String { temporary.path }

    @Test func migratesOnceAndRecordsEachStep() throws {
        let path = temporaryDirectory() + "/peon.db"
        let a = try Store(path: path)
        let b = try Store(path: path)  // a second process starting at once: nothing applied twice
        #expect(try Migrator.applied(a.connection) == Migration.all.map(\.id))
        #expect(try Migrator.applied(b.connection) == Migration.all.map(\.id))
        let mode = try a.connection.query("PRAGMA journal_mode").first?.first?.text
        #expect(mode == "wal")
        #expect(try a.connection.query("PRAGMA foreign_keys").first?.first?.integer == 1)
    }

    @Test func migratesConcurrentlyFromManyConnections() async throws {
        // Separate connections racing on a fresh file, as worker processes do at start.
        let path = temporaryDirectory() + "/peon.db"
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 { group.addTask { (try? Store(path: path)) != nil } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 6))
        let store = try Store(path: path)
        #expect(try Migrator.applied(store.connection) == Migration.all.map(\.id))
    }

    @Test func readTransactionsCannotWrite() throws {
        let store = try Store(path: temporaryDirectory() + "/peon.db")
        #expect(throws: StoreError.self) {
            try store.read { tx in try tx.setMeta("x", "y") }
        }
        try store.write { tx in try tx.setMeta("x", "y") }
        #expect(try store.read { tx in try tx.meta("x") } == "y")
    }

    @Test func immediateWritersWaitInsteadOfFailing() throws {
        let path = temporaryDirectory() + "/peon.db"
        final class Holder: @unchecked Sendable {  // a's store: used by its thread alone until joined
            let store: Store
            let holding = Atomic<Bool>(false)
            init(_ store: Store) { self.store = store }
        }
        let a = Holder(try Store(path: path))
        let b = try Store(path: path)
        // a holds the write lock (its transaction open) while b asks for it: b waits on
        // busy_timeout instead of failing with SQLITE_BUSY, then reads what a committed.
        let thread = ThreadHandle {
            try? a.store.write { tx in
                try tx.setMeta("n", "1")
                a.holding.store(true, ordering: .releasing)
                Monotonic.sleep(0.3)
            }
        }
        while !a.holding.load(ordering: .acquiring) { usleep(1000) }
        try b.write { tx in
            let n = Int(try tx.meta("n") ?? "0")!
            try tx.setMeta("n", "\(n + 1)")
        }
        thread.join()
        #expect(try b.read { tx in try tx.meta("n") } == "2")
    }

    @Test func failedWriteRollsBack() throws {
        let store = try Store(path: temporaryDirectory() + "/peon.db")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.write { tx in
                try tx.setMeta("k", "v")
                throw Boom()
            }
        }
        #expect(try store.read { tx in try tx.meta("k") } == nil)
    }

    @Test func errorsDoNotCarryBoundValues() throws {
        let store = try Store(path: temporaryDirectory() + "/peon.db")
        do {
            try store.write { tx in
                try tx.query(
                    "INSERT INTO api_keys (id, prefix, lookup, hash, scope, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [.text("k"), .text("p"), .text("l"), .blob([1]), .text("root-secret-scope"), .integer(0)])
            }
            Issue.record("the CHECK constraint did not fire")
        } catch {
            #expect(!"\(error)".contains("root-secret-scope"))
        }
    }
}
