public import PeonJSON

/// What a webhook can be told about.
public enum WebhookEvent: String, Sendable, CaseIterable {
    case created, started, stopped, crashed
    /// Started again by the crash policy.
    case restarted
    case backupDone = "backup_done"
    case backupFailed = "backup_failed"
    case updateDone = "update_done"
    case idleStop = "idle_stop"
    /// The plan's probe answered after a start: the game accepts players.
    case ready
    /// The plan's `start_timeout` passed after a start with no answer from the probe.
    case startFailed = "start_failed"
    /// A sleeping server's held port saw a client: the server is starting.
    case wake

    /// The event a succeeded job of `kind` means, if any.
    public init?(succeeded kind: JobKind) {
        switch kind {
        case .create: self = .created
        case .start, .restart: self = .started
        case .stop: self = .stopped
        case .update: self = .updateDone
        case .backup: self = .backupDone
        case .destroy, .eradicate, .adopt, .console, .restore, .deleteBackup, .pruneBackups, .listFiles, .readFile, .writeFile,
            .deleteFile:
            return nil
        }
    }

    /// One line for people (Discord's `content`).
    public func sentence(server: String) -> String {
        switch self {
        case .created: "Server \(server) was created."
        case .started: "Server \(server) started."
        case .stopped: "Server \(server) stopped."
        case .crashed: "Server \(server) crashed."
        case .restarted: "Server \(server) crashed and is being restarted."
        case .backupDone: "Backup of \(server) done."
        case .backupFailed: "Backup of \(server) failed."
        case .updateDone: "Server \(server) was updated."
        case .idleStop: "Server \(server) had no players and is being stopped."
        case .ready: "Server \(server) is ready for players."
        case .startFailed: "Server \(server) started but does not accept players."
        case .wake: "A player is joining \(server): it is waking up."
        }
    }
}

/// A validated `POST /webhooks` body.
public struct WebhookRequest: Sendable, Equatable {
    public let url: String
    /// Empty: every event.
    public let events: [WebhookEvent]
    public let server: String?

    public static let maximumURLBytes = 2048

    public init(_ body: JSON) throws(DomainError) {
        guard let url = body["url"]?.stringValue else { throw .invalid(field: "url", reason: "url is required: an https URL.") }
        try Self.validate(url: url)
        self.url = url
        switch body["events"] {
        case nil, .null?: events = []
        case .array(let items)?:
            var out: [WebhookEvent] = []
            for item in items.prefix(WebhookEvent.allCases.count + 1) {
                guard let name = item.stringValue, let event = WebhookEvent(rawValue: name) else {
                    throw .invalid(
                        field: "events",
                        reason: "events must list some of: \(WebhookEvent.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                if !out.contains(event) { out.append(event) }
            }
            guard items.count <= WebhookEvent.allCases.count * 2 else {
                throw .invalid(field: "events", reason: "events lists too many items.")
            }
            events = out
        default: throw .invalid(field: "events", reason: "events must be an array of event names.")
        }
        switch body["server"] {
        case nil, .null?: server = nil
        case .string(let s)?: server = try ServerUID(validating: s).description
        default: throw .invalid(field: "server", reason: "server must be a server uid GAME.NAME.")
        }
    }

    /// http or https only; https unless the host is loopback; no user or password; at most 2 KiB;
    /// printable ASCII (no spaces or control characters libcurl would pass on).
    public static func validate(url: String) throws(DomainError) {
        let reason =
            "url must be an https URL of at most \(maximumURLBytes) bytes without credentials (http only for 127.0.0.1, [::1] or localhost)."
        guard WebURL(url, maximumBytes: maximumURLBytes)?.isPrivateTransport == true else { throw .invalid(field: "url", reason: reason) }
    }

    /// Discord's webhook endpoints take `{"content", "embeds"}`.
    public static func isDiscord(_ url: String) -> Bool {
        let lower = url.lowercased()
        return [
            "https://discord.com/api/webhooks/", "https://discordapp.com/api/webhooks/", "https://ptb.discord.com/api/webhooks/",
            "https://canary.discord.com/api/webhooks/",
        ].contains { lower.hasPrefix($0) }
    }

    /// The body delivered for an event: Discord's format for Discord URLs, else plain JSON.
    public static func body(url: String, event: WebhookEvent, server: String, at: Int64, detail: JSON) -> JSON {
        let plain: JSON = .object([
            ("event", .string(event.rawValue)), ("server", .string(server)), ("at", .number(Double(at))), ("detail", detail),
        ])
        guard isDiscord(url) else { return plain }
        let color: Int =
            switch event {
            case .crashed, .backupFailed: 0xE7_4C3C
            case .restarted, .idleStop: 0xF3_9C12
            default: 0x2E_CC71
            }
        var fields: [JSON] = [["name": "server", "value": .string(server), "inline": true]]
        for (key, value) in detail.objectValue ?? [] {
            fields.append(["name": .string(key), "value": .string(value.stringValue ?? value.text), "inline": true])
        }
        return .object([
            ("content", .string(event.sentence(server: server))),
            ("embeds", [.object([("title", .string(event.rawValue)), ("color", .int(color)), ("fields", .array(fields))])]),
        ])
    }
}

/// When a failed delivery is tried again: 1 s, 5 s, 30 s, 2 min, 10 min, then it has failed.
public enum WebhookRetry {
    public static let delays: [Int64] = [1, 5, 30, 120, 600]

    /// The wait before attempt `attempts + 1`, or nil when `attempts` were the last.
    public static func delay(afterAttempts attempts: Int) -> Int64? {
        attempts >= 1 && attempts <= delays.count ? delays[attempts - 1] : nil
    }
}
