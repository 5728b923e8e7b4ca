import PeonCore
import PeonJSON
public import PeonPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// What every node channel must do, in-process or through an agent, with what a game container
/// may have left in the server's folder: links planted at every name an operation reads or
/// writes, a folder swapped for a link, FIFOs, tens of thousands of files.
///
/// `data` is the node's data folder as this test process reaches it (the same disk the node
/// works on), so the suite plants files the way a game would and looks at what the node did.
/// `run` names the servers it makes (`peontest.<run>…`); everything it made is removed. Each
/// failed clause is one line of the answer; an empty answer is a pass.
public struct NodeContract {
    public let node: any NodeChannel
    public let data: String
    public let run: String

    public init(node: any NodeChannel, data: String, run: String) {
        self.node = node
        self.data = data
        self.run = run
    }

    static let sources = BindSources(volumes: ["data", "config", "user"], files: [])

    public func check() -> [String] {
        var failures: [String] = []
        func check(_ ok: Bool, _ clause: String) { if !ok { failures.append(clause) } }
        let uid: ServerUID
        do {
            uid = try ServerUID(validating: "peontest.\(run)h")
        } catch {
            return ["bad run name \(run)"]
        }
        let dir = data + "/servers/peontest/\(run)h"
        // A file outside every server folder that a game would love to overwrite or read.
        let secret = data + "/peon-contract-secret-\(run)"
        defer {
            _ = try? node.remove(uid)
            unlink(secret)
            unlink(secret + ".d/stolen")
            rmdir(secret + ".d")
        }
        guard write(secret, "keep me") else { return ["cannot write \(secret)"] }
        do {
            let actions = [PlanFile(path: "server_start", bytes: Array("#!/bin/sh\necho v1\n".utf8), executable: true)]
            _ = try node.prepare(uid, Self.sources, actions: actions, reinstallActions: false)
            check(read(dir + "/actions/server_start") == "#!/bin/sh\necho v1\n", "prepare installs the actions")

            // A link planted at an action's name, at a temporary name the old agent used, and at
            // the update markers: each is replaced, never written through.
            for name in ["server_start", "server_start.peon-tmp", ".peon-new-server_start", ".validate", ".update"] {
                unlink(dir + "/actions/" + name)
                symlink(secret, dir + "/actions/" + name)
            }
            let v2 = [PlanFile(path: "server_start", bytes: Array("#!/bin/sh\necho v2\n".utf8), executable: true)]
            try node.update(uid, mode: .validate, actions: v2)
            check(read(secret) == "keep me", "update writes through no planted link")
            check(
                isRegular(dir + "/actions/server_start") && read(dir + "/actions/server_start") == "#!/bin/sh\necho v2\n",
                "update replaces a linked action with the plan's")
            check(isRegular(dir + "/actions/.validate"), "update replaces a linked marker with a file")

            // The manifest's name planted with a link.
            unlink(dir + "/peon-server.json")
            symlink(secret, dir + "/peon-server.json")
            try node.writeManifest(uid, Array("{\"uid\":\"x\"}".utf8))
            check(read(secret) == "keep me" && read(dir + "/peon-server.json") == "{\"uid\":\"x\"}", "the manifest replaces a link")

            // config/: a link to a file outside, a FIFO, then the folder itself swapped for a link.
            _ = write(dir + "/config/server_name", "Contract")
            symlink(secret, dir + "/config/password")
            mkfifo(dir + "/config/motd", 0o644)
            let started = Monotonic.now()
            let config = try node.config(uid)
            check(config.map(\.0) == ["server_name"] && config.first?.1 == "Contract", "config reads regular files only: \(config)")
            check(Monotonic.now() - started < 5, "config does not block on a FIFO")
            // Just written: not settled (a game's write may be halfway); untouched for a minute: settled.
            check((try node.configFiles(uid)).map(\.settled) == [false], "a file written a moment ago is not settled")
            var past = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, dir + "/config/server_name", &past, 0)
            check((try node.configFiles(uid)).map(\.settled) == [true], "a file untouched for a minute is settled")
            // A FIFO where a log is tailed: nothing, at once.
            mkfifo(dir + "/user/game.log", 0o644)
            check((try node.tail(uid, path: "user/game.log", limit: 1024)) == nil && Monotonic.now() - started < 5, "tail skips a FIFO")
            // A link in the middle of a path: nothing.
            mkdir(secret + ".d", 0o755)
            _ = write(secret + ".d/stolen", "secret log")
            symlink(secret + ".d", dir + "/user/logs")
            check((try node.tail(uid, path: "user/logs/stolen", limit: 1024)) == nil, "tail follows no link in the path")
            rename(dir + "/config", dir + "/config.real")
            symlink(secret + ".d", dir + "/config")
            check((try node.config(uid)).isEmpty, "a config folder swapped for a link reads as empty")
            unlink(dir + "/config")
            rename(dir + "/config.real", dir + "/config")

            // A folder swapped for a link and back, again and again, while the node reads it: the
            // node never reads through the link (a check-then-use race a game could win).
            _ = write(secret + ".d/server_name", "stolen")
            let swapper = Swapper(dir + "/config", link: secret + ".d")
            var leaked = false
            let raceEnd = Monotonic.now() + 2
            while Monotonic.now() < raceEnd {
                if let seen = try? node.config(uid), seen.contains(where: { $0.1 == "stolen" }) { leaked = true }
                if let text = try? node.tail(uid, path: "config/server_name", limit: 64), text == "stolen" { leaked = true }
            }
            swapper.stop()
            check(
                !leaked && swapper.swaps > 0, "a folder swapped for a link while it is read is never read through (\(swapper.swaps) swaps)")
            unlink(secret + ".d/server_name")

            // A 2 GiB file (sparse): skipped by config, only its tail read as a log, at once.
            let huge = open(dir + "/config/huge", O_WRONLY | O_CREAT, 0o644)
            _ = ftruncate(huge, 2 << 30)
            close(huge)
            let log = open(dir + "/user/huge.log", O_WRONLY | O_CREAT, 0o644)
            _ = ftruncate(log, 2 << 30)
            close(log)
            // The files API: what a game left is listed as it is, read only when it is a regular
            // file, replaced (never written through) when written, removed itself when deleted.
            func path(_ text: String) throws -> ServerFilePath { try ServerFilePath(validating: text) }
            func refusal(_ body: () throws -> Void) -> ServerFileError? {
                do {
                    try body()
                    return nil
                } catch let error as ServerFileError {
                    return error
                } catch {
                    return .refused("not a file refusal: \(error)")
                }
            }
            func isRefused(_ error: ServerFileError?) -> Bool { if case .refused = error { true } else { false } }
            let listed = try node.listFiles(uid, path: try path("config"), limit: 100)
            let kinds = Dictionary(listed.entries.map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
            check(
                kinds["server_name"] == .file && kinds["password"] == .link && kinds["motd"] == .fifo && kinds["huge"] == .file
                    && !listed.truncated, "files lists each entry as what it is: \(kinds)")
            check(
                Set((try node.listFiles(uid, path: nil, limit: 100)).entries.map(\.name)) == ["actions", "config", "user"],
                "files without a path lists the server's areas only")
            check(
                (try node.readFile(uid, path: try path("config/server_name"), limit: 1 << 20)) == Array("Contract".utf8),
                "file-read reads a regular file")
            let fileStart = Monotonic.now()
            check(
                isRefused(refusal { _ = try node.readFile(uid, path: try path("config/password"), limit: 1 << 20) }),
                "file-read refuses a link")
            check(
                isRefused(refusal { _ = try node.readFile(uid, path: try path("config/motd"), limit: 1 << 20) }), "file-read refuses a FIFO"
            )
            check(Monotonic.now() - fileStart < 5, "file-read does not block on a FIFO")
            check(
                refusal { _ = try node.readFile(uid, path: try path("config/huge"), limit: 1 << 20) }
                    == .tooLarge(
                        "config/huge is \(2 << 30) bytes, more than the \(1 << 20) allowed"), "file-read refuses a 2 GiB file at once")
            check(
                refusal { _ = try node.readFile(uid, path: try path("config/absent"), limit: 1 << 20) }.map {
                    if case .notFound = $0 { true } else { false }
                } == true, "file-read of nothing says not found")
            check(
                isRefused(refusal { _ = try node.readFile(uid, path: try path("user/logs/stolen"), limit: 1 << 20) }),
                "file-read follows no link in the path")
            // A write at a linked name replaces the link; below a linked folder it is refused.
            let written = try node.writeFile(uid, path: try path("config/password"), bytes: Array("new".utf8))
            check(
                read(secret) == "keep me" && isRegular(dir + "/config/password") && read(dir + "/config/password") == "new"
                    && written.size == 3
                    && written.sha256 == "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437",
                "file-write replaces a link, never writes through it")
            check(
                isRefused(refusal { _ = try node.writeFile(uid, path: try path("user/logs/planted"), bytes: [1]) })
                    && access(secret + ".d/planted", F_OK) != 0, "file-write refuses a folder that is a link")
            check(
                isRefused(refusal { _ = try node.writeFile(uid, path: try path("config/motd"), bytes: [1]) }) == false
                    && isRegular(dir + "/config/motd"), "file-write replaces a FIFO without opening it")
            _ = try node.writeFile(uid, path: try path("user/mods/new/a.txt"), bytes: Array("mod".utf8))
            check(read(dir + "/user/mods/new/a.txt") == "mod", "file-write makes the folders on the way")
            check(
                isRefused(refusal { _ = try node.writeFile(uid, path: try path("actions/server_start"), bytes: [1]) })
                    && read(dir + "/actions/server_start") == "#!/bin/sh\necho v2\n", "file-write leaves actions/ alone")
            // A delete removes a link itself, a folder with what it holds, never an area.
            try node.deleteFile(uid, path: try path("user/logs"))
            check(
                access(dir + "/user/logs", F_OK) != 0 && read(secret + ".d/stolen") == "secret log",
                "file-delete removes a link, not its target")
            try node.deleteFile(uid, path: try path("user/mods"))
            check(access(dir + "/user/mods", F_OK) != 0, "file-delete removes a folder and what it holds")
            check(
                isRefused(refusal { try node.deleteFile(uid, path: try path("config")) }) && access(dir + "/config", F_OK) == 0,
                "file-delete keeps an area")
            // The config folder swapped for a link while it is read and written: never through the link.
            _ = write(secret + ".d/server_name", "stolen")
            let fileSwapper = Swapper(dir + "/config", link: secret + ".d")
            var fileLeaked = false
            let fileRaceEnd = Monotonic.now() + 2
            while Monotonic.now() < fileRaceEnd {
                if let bytes = try? node.readFile(uid, path: try path("config/server_name"), limit: 64), bytes == Array("stolen".utf8) {
                    fileLeaked = true
                }
                _ = try? node.writeFile(uid, path: try path("config/raced"), bytes: [1])
                if access(secret + ".d/raced", F_OK) == 0 { fileLeaked = true }
            }
            fileSwapper.stop()
            check(
                !fileLeaked && fileSwapper.swaps > 0,
                "a folder swapped for a link is never read or written through (\(fileSwapper.swaps) swaps)")
            unlink(secret + ".d/server_name")
            unlink(secret + ".d/raced")

            let bigStart = Monotonic.now()
            check(!(try node.config(uid)).contains { $0.0 == "huge" }, "config skips a 2 GiB file")
            check((try node.tail(uid, path: "user/huge.log", limit: 4096))?.utf8.count == 4096, "tail reads only the end of a 2 GiB log")
            check(Monotonic.now() - bigStart < 5, "2 GiB files cost nothing to read around")
            unlink(dir + "/config/huge")
            unlink(dir + "/user/huge.log")

            // Tens of thousands of files in config/: bounded work, an answer in seconds.
            let many = dir + "/config/many"
            mkdir(many, 0o755)
            for i in 0..<70_000 { close(open(dir + "/config/f\(i)", O_WRONLY | O_CREAT, 0o644)) }
            let before = Monotonic.now()
            let crowded = try node.config(uid)
            check(crowded.count <= 64 && Monotonic.now() - before < 10, "config reads a bounded number of files (\(crowded.count))")
            let listStart = Monotonic.now()
            let crowdedListing = try node.listFiles(uid, path: try path("config"), limit: 10_000)
            check(
                crowdedListing.truncated && crowdedListing.entries.count <= 10_000 && Monotonic.now() - listStart < 10,
                "files lists a bounded number of entries (\(crowdedListing.entries.count))")

            // A bind source swapped for a link is refused before a start.
            rename(dir + "/user", dir + "/user.real")
            symlink(secret + ".d", dir + "/user")
            check((try? node.check(uid, Self.sources)) == nil, "check refuses a bind source swapped for a link")
            unlink(dir + "/user")
            rename(dir + "/user.real", dir + "/user")

            // Removing the folder follows no link out of it.
            symlink(secret + ".d", dir + "/data/escape")
            check(try node.remove(uid) == true, "remove says it found the folder")
            check(read(secret + ".d/stolen") == "secret log" && read(secret) == "keep me", "remove follows no link")
            check(access(dir, F_OK) != 0, "remove removes the folder")
            // An erase by uid alone answers 404 when nothing is left: the node says so.
            check(try node.remove(uid) == false, "remove of a folder that is gone says so")
        } catch {
            failures.append("an operation failed: \(error)")
        }
        return failures
    }

    func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.utf8.count
    }

    func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &buffer, buffer.count)
        return n >= 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }

    func isRegular(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}

/// Swaps a folder for a link to another folder and back, as fast as it can, on a thread of its own.
final class Swapper: @unchecked Sendable {  // `running` and `swaps` are touched by one thread at a time
    let path: String
    let link: String
    var running = true
    var swaps = 0
    var thread = pthread_t()

    init(_ path: String, link: String) {
        self.path = path
        self.link = link
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &thread, nil,
            { raw in
                let me = Unmanaged<Swapper>.fromOpaque(raw!).takeRetainedValue()
                while me.running {
                    rename(me.path, me.path + ".real")
                    symlink(me.link, me.path)
                    unlink(me.path)
                    rename(me.path + ".real", me.path)
                    me.swaps += 1
                }
                return nil
            }, box)
    }

    func stop() {
        running = false
        pthread_join(thread, nil)
    }
}

enum Monotonic {
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
