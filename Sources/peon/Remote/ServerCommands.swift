import ArgumentParser
import PeonCore
import PeonJSON
import PeonSystem

/// A verb against a running API: resolves the client, runs, and turns a `Failure` into its exit code.
protocol RemoteCommand: ParsableCommand {
    var remote: RemoteOptions { get }
    func run(_ client: APIClient) throws
}

extension RemoteCommand {
    func run() throws {
        do {
            try run(try remote.client())
        } catch let failure as Failure {
            ProcessEnvironment.writeError("Error: \(failure.description)\n")
            throw ExitCode(failure.code)
        }
    }

    func out(_ text: String) { ProcessEnvironment.writeOut(text + "\n") }

    /// The raw answer for `--json`, else nothing printed here.
    func printJSON(_ answer: (status: Int, body: JSON?, raw: [UInt8])) {
        ProcessEnvironment.writeOut(String(decoding: answer.raw, as: UTF8.self) + "\n")
    }
}

/// A server uid argument, validated before anything is sent.
struct ServerArgument: ParsableArguments {
    @Argument(help: "The server, GAME.NAME (e.g. valheim.riverstead).") var server: String

    func validate() throws {
        do {
            _ = try ServerUID(validating: server)
        } catch {
            guard case .invalid(_, let reason) = error else { throw ValidationError("not a server uid") }
            throw ValidationError(reason)
        }
    }
}

extension Peon {
    struct Servers: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "List servers and their state.")
        @OptionGroup var remote: RemoteOptions

        func run(_ client: APIClient) throws {
            let answer = try client.expect("GET", "/api/v1/servers")
            if remote.json { return printJSON(answer) }
            out("SERVER                          STATE       DESCRIPTION")
            for s in answer.body?.arrayValue ?? [] {
                let uid = "\(s["game_uid"]?.stringValue ?? "").\(s["servername"]?.stringValue ?? "")"
                out(
                    [uid.padded(31), (s["container_state"]?.stringValue ?? "").padded(11), s["description"]?.stringValue ?? ""].joined(
                        separator: " "))
            }
        }
    }

    struct Plans: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "List the games that servers can be made of.")
        @OptionGroup var remote: RemoteOptions

        func run(_ client: APIClient) throws {
            let answer = try client.expect("GET", "/api/v1/plans")
            if remote.json { return printJSON(answer) }
            out("GAME                 TITLE")
            for p in answer.body?.arrayValue ?? [] {
                out((p["game_uid"]?.stringValue ?? "").padded(20) + " " + (p["title"]?.stringValue ?? ""))
            }
        }
    }

    struct Create: RemoteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create (and start) a server from a plan, following the job's progress.")
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument
        @Option(name: .customLong("set"), help: "A plan setting, KEY=VALUE (repeatable).") var settings: [String] = []
        @Option(help: "A description of the server.") var description: String?
        @Flag(help: "Create the files but do not start the server.") var startLater = false
        @OptionGroup var wait: WaitOptions

        func validate() throws {
            if wait.wait, startLater { throw ValidationError("--wait needs a start: not with --start-later") }
            for s in settings where !s.contains("=") || s.hasPrefix("=") {
                throw ValidationError("--set takes KEY=VALUE (got \(s.prefix(60)))")
            }
        }

        func run(_ client: APIClient) throws {
            var body: [(String, JSON)] = settings.map { s in
                let eq = s.firstIndex(of: "=")!
                return (String(s[..<eq]), .string(String(s[s.index(after: eq)...])))
            }
            if let description { body.append(("description", .string(description))) }
            if startLater { body.append(("start_later", .bool(true))) }
            try JobFollower(client: client, json: remote.json).run(
                "PUT", "/api/v1/server/create/\(target.server)?async=true", body: .object(body))
            if wait.wait { try ReadyWaiter(client: client, server: target.server, json: remote.json).wait(seconds: wait.waitTimeout) }
        }
    }

    struct Update: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Update a server (image and game files), following the job's progress.")
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument
        @Option(help: "full, image, server, reinit, quick or validate.") var mode: String = "full"

        func run(_ client: APIClient) throws {
            try JobFollower(client: client, json: remote.json).run(
                "PUT", "/api/v1/server/update/\(target.server)?async=true", body: .object([("mode", .string(mode))]))
        }
    }

    /// start, stop and restart: one synchronous call, as PEON's clients make it.
    struct Power: ParsableArguments {
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument

        func run(_ action: String, _ client: APIClient, wait: WaitOptions? = nil) throws {
            let answer = try client.expect("PUT", "/api/v1/server/\(action)/\(target.server)")
            if let wait, wait.wait {
                // A start the API answered before it ended (202) is followed to its end first.
                if answer.status == 202 { try JobFollower(client: client, json: remote.json).follow(answer) }
                return try ReadyWaiter(client: client, server: target.server, json: remote.json).wait(seconds: wait.waitTimeout)
            }
            if remote.json { return ProcessEnvironment.writeOut(String(decoding: answer.raw, as: UTF8.self) + "\n") }
            if answer.status == 202, let id = answer.body?["id"] {
                ProcessEnvironment.writeOut("\(action) of \(target.server) is still running: job \(id.text)\n")
            } else {
                ProcessEnvironment.writeOut("\(target.server): \(answer.body?["container_state"]?.stringValue ?? "done")\n")
            }
        }
    }

    struct Start: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Start a server.")
        @OptionGroup var power: Power
        @OptionGroup var wait: WaitOptions
        var remote: RemoteOptions { power.remote }
        func run(_ client: APIClient) throws { try power.run("start", client, wait: wait) }
    }

    struct Stop: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a server.")
        @OptionGroup var power: Power
        var remote: RemoteOptions { power.remote }
        func run(_ client: APIClient) throws { try power.run("stop", client) }
    }

    struct Restart: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Restart a server.")
        @OptionGroup var power: Power
        @OptionGroup var wait: WaitOptions
        var remote: RemoteOptions { power.remote }
        func run(_ client: APIClient) throws { try power.run("restart", client, wait: wait) }
    }

    struct Logs: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Print a server's recent log lines.")
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument
        @Option(help: "How many lines (1-10000).") var lines: Int = 200
        @Flag(name: .shortAndLong, help: "Keep printing new lines until interrupted.") var follow = false

        func validate() throws {
            guard (1...10_000).contains(lines) else { throw ValidationError("--lines must be from 1 to 10000") }
        }

        func fetch(_ client: APIClient) throws -> (answer: (status: Int, body: JSON?, raw: [UInt8]), lines: [String]) {
            let answer = try client.expect("GET", "/api/v1/server/logs/\(target.server)?lines=\(lines)", unsupported: "logs")
            // An API without the logs route answers this path with the plain server object.
            guard let items = answer.body?["logs"]?.arrayValue else {
                throw Failure("logs is not supported by this server (its API has no logs route)", code: ExitCodes.unsupported)
            }
            return (answer, items.compactMap(\.stringValue))
        }

        func run(_ client: APIClient) throws {
            var (answer, seen) = try fetch(client)
            if remote.json, !follow { return printJSON(answer) }
            for line in seen { out(line) }
            while follow {
                Monotonic.sleep(2)
                let now = try fetch(client).lines
                // New lines are those after the last line already printed.
                let start = seen.last.flatMap { last in now.lastIndex(of: last).map { $0 + 1 } } ?? 0
                for line in now[start...] { out(line) }
                seen = now
            }
        }
    }

    struct Backup: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Back up a server's files.")
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument

        func run(_ client: APIClient) throws {
            let answer = try client.expect("POST", "/api/v1/server/backup/\(target.server)?async=true", unsupported: "backup")
            try JobFollower(client: client, json: remote.json).follow(answer)
        }
    }

    struct Restore: RemoteCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a server from a backup.")
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var target: ServerArgument
        @Argument(help: "The backup's id (default: the newest).") var backup: String?

        func run(_ client: APIClient) throws {
            let id: JSON
            if let backup {
                guard let n = CheckedNumber.integer(backup, in: 1...(1 << 53)) else {
                    throw ValidationError("the backup id is a whole number (see the ids in GET /api/v1/server/backups/<uid>)")
                }
                id = .number(Double(n))
            } else {
                let list = try client.expect("GET", "/api/v1/server/backups/\(target.server)", unsupported: "restore")
                guard let newest = list.body?.arrayValue?.first?["id"] else {
                    throw Failure("\(target.server) has no backup to restore", code: ExitCodes.refused)
                }
                id = newest
            }
            let body: JSON = ["id": id]
            let answer = try client.expect("PUT", "/api/v1/server/restore/\(target.server)?async=true", body: body, unsupported: "restore")
            try JobFollower(client: client, json: remote.json).follow(answer)
        }
    }
}

/// Starts a job with `?async=true` and follows `GET /api/v1/jobs/<id>` to its end: a progress
/// bar on a terminal, one line per phase change otherwise (logs and pipes).
/// `--wait`: after a start, until the game accepts players.
struct WaitOptions: ParsableArguments {
    @Flag(help: "Wait until the game accepts players (its plan's ready probe answers), not just until it runs.") var wait = false
    @Option(help: "Give up waiting after this many seconds (the plan's own start_timeout fails it sooner).") var waitTimeout = 7200

    func validate() throws {
        guard (1...86_400).contains(waitTimeout) else { throw ValidationError("--wait-timeout must be from 1 to 86400 seconds") }
    }
}

/// Polls a started server until it is ready (exit 0), its plan's start_timeout passed or it is no
/// longer starting (exit 1), or `seconds` passed (exit 1).
struct ReadyWaiter {
    let client: APIClient
    let server: String
    let json: Bool

    func wait(seconds: Int) throws {
        let deadline = Monotonic.seconds() + Double(seconds)
        let started = Monotonic.seconds()
        if !json { ProcessEnvironment.writeError("waiting for \(server) to accept players\n") }
        while true {
            let answer = try client.expect("GET", "/api/v1/server/get/\(server)")
            guard let body = answer.body, let ready = body["ready"]?.boolValue else {
                throw Failure(
                    "--wait is not supported by this server (its server object says nothing of ready)", code: ExitCodes.unsupported)
            }
            let state = body["server_state"]?.stringValue ?? "unknown"
            if ready {
                if json { return ProcessEnvironment.writeOut(String(decoding: answer.raw, as: UTF8.self) + "\n") }
                let took = (Monotonic.seconds() - started).rounded()
                return ProcessEnvironment.writeOut("\(server): ready (\(Int(took)) s)\n")
            }
            if state == "start_failed" {
                throw Failure("\(server) runs but does not accept players: its plan's start_timeout passed", code: ExitCodes.refused)
            }
            guard state == "starting" else { throw Failure("\(server) is \(state), not starting", code: ExitCodes.refused) }
            guard Monotonic.seconds() < deadline else {
                throw Failure("\(server) was not ready after \(seconds) s (--wait-timeout)", code: ExitCodes.refused)
            }
            Monotonic.sleep(1)
        }
    }
}

struct JobFollower {
    let client: APIClient
    let json: Bool

    func run(_ method: String, _ path: String, body: JSON) throws {
        try follow(try client.expect(method, path, body: body))
    }

    func follow(_ started: (status: Int, body: JSON?, raw: [UInt8])) throws {
        guard started.status == 202, let id = CheckedNumber.integer(started.body?["id"], in: 1...Int64.max) else {
            // Finished at once (or an API that answered synchronously).
            if json { ProcessEnvironment.writeOut(String(decoding: started.raw, as: UTF8.self) + "\n") }
            return
        }
        let terminal = !json && ProcessEnvironment.isTerminal(1)
        var lastLine = ""
        var job = started.body ?? .null
        var raw = started.raw
        while true {
            let state = job["state"]?.stringValue ?? "queued"
            let phase = job["progress"]?["phase"]?.stringValue ?? state
            let percent = CheckedNumber.int(job["progress"]?["percent"], in: 0...100)
            if !json {
                let line = Self.describe(id: id, kind: job["kind"]?.stringValue ?? "job", phase: phase, percent: percent)
                if terminal {
                    ProcessEnvironment.writeOut("\r\u{1B}[K" + Self.bar(percent) + " " + line)
                } else if line != lastLine {
                    ProcessEnvironment.writeOut(line + "\n")
                }
                lastLine = line
            }
            if ["succeeded", "failed", "cancelled"].contains(state) { break }
            Monotonic.sleep(0.5)
            let answer = try client.expect("GET", "/api/v1/jobs/\(id)")
            job = answer.body ?? .null
            raw = answer.raw
        }
        if terminal { ProcessEnvironment.writeOut("\n") }
        if json { ProcessEnvironment.writeOut(String(decoding: raw, as: UTF8.self) + "\n") }
        guard job["state"] == "succeeded" else {
            throw Failure(
                "job \(id) \(job["state"]?.stringValue ?? "failed"): \(job["error"]?.stringValue ?? "no reason given")",
                code: ExitCodes.refused)
        }
        if !json { ProcessEnvironment.writeOut("job \(id) succeeded\n") }
    }

    static func describe(id: Int64, kind: String, phase: String, percent: Int?) -> String {
        "job \(id) \(kind): \(phase)" + (percent.map { " \($0)%" } ?? "")
    }

    static func bar(_ percent: Int?) -> String {
        guard let percent else { return "[" + String(repeating: "·", count: 20) + "]" }
        let filled = percent / 5
        return "[" + String(repeating: "#", count: filled) + String(repeating: "·", count: 20 - filled) + "]"
    }
}
