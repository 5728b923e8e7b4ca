import PeonCore
import PeonJSON
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `2026-03-29T01:30` (UTC) in seconds since 1970.
func utc(_ s: String) -> Int64 {
    let p = s.split(whereSeparator: { "-T:".contains($0) }).map { Int($0)! }
    return Int64(CivilDate(year: p[0], month: p[1], day: p[2]).days) * 86400 + Int64(p[3] * 3600 + p[4] * 60)
}

/// The system tz database's file for `name` (Debian's tzdata), read plainly: tests only.
func systemZone(_ name: String) throws -> TimeZoneRules {
    guard let f = fopen("/usr/share/zoneinfo/\(name)", "rb") else { throw DomainError.invalid(field: "tz", reason: "no tzdata") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n == 0 { break }
        bytes += buffer[..<n]
    }
    return try TimeZoneRules(name: name, tzif: bytes)
}

let berlinPosix = try! TimeZoneRules(name: "Europe/Berlin", posix: "CET-1CEST,M3.5.0,M10.5.0/3")

@Suite struct CronExpressionTests {
    /// (expression, after, expected next), UTC.
    static let utcCases: [(String, String, String)] = [
        ("*/5 * * * *", "2026-03-01T00:00", "2026-03-01T00:05"),
        ("* * * * *", "2026-03-01T00:00", "2026-03-01T00:01"),
        ("0 12 * * *", "2026-03-01T12:00", "2026-03-02T12:00"),
        ("0 12 * * *", "2026-03-01T11:59", "2026-03-01T12:00"),
        ("5-10/2 * * * *", "2026-03-01T00:07", "2026-03-01T00:09"),
        ("5-10/2 * * * *", "2026-03-01T00:09", "2026-03-01T01:05"),
        ("0 */6 * * *", "2026-03-01T06:00", "2026-03-01T12:00"),
        ("0 9 * * mon-fri", "2026-02-28T10:00", "2026-03-02T09:00"),
        ("15 10 * * 7", "2026-02-28T10:00", "2026-03-01T10:15"),
        ("15 10 * * SUN", "2026-02-28T10:00", "2026-03-01T10:15"),
        ("0 0 1,15 * *", "2026-03-01T00:00", "2026-03-15T00:00"),
        ("0 0 1 jan *", "2026-03-01T00:00", "2027-01-01T00:00"),
        ("30 4 1 Jul-Aug *", "2026-03-01T00:00", "2026-07-01T04:30"),
        ("0 0 29 feb *", "2026-03-01T00:00", "2028-02-29T00:00"),
        // Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * fri", "2026-03-01T00:00", "2026-03-06T00:00"),
        ("0 0 13 * fri", "2026-03-12T00:00", "2026-03-13T00:00"),
        ("0 0 31 * *", "2026-04-01T00:00", "2026-05-31T00:00"),
        ("59 23 31 12 *", "2026-12-31T23:59", "2027-12-31T23:59"),
        ("  0   12  *  *  *  ", "2026-03-01T00:00", "2026-03-01T12:00"),
    ]

    @Test(arguments: utcCases)
    func nextRunInUTC(_ c: (String, String, String)) throws {
        let cron = try CronExpression(c.0)
        #expect(cron.next(after: utc(c.1), in: .utc) == utc(c.2), "\(c.0) after \(c.1)")
    }

    /// (zone, expression, after, expected), all UTC: DST gaps and repeats in real zones.
    static let zoneCases: [(String, String, String, String)] = [
        ("Europe/Berlin", "0 12 * * *", "2026-07-01T00:00", "2026-07-01T10:00"),
        ("Europe/Berlin", "0 12 * * *", "2026-01-10T00:00", "2026-01-10T11:00"),
        // Spring forward: 02:30 does not exist; it runs as if the clock had not moved (03:30 CEST).
        ("Europe/Berlin", "30 2 * * *", "2026-03-29T00:00", "2026-03-29T01:30"),
        ("Europe/Berlin", "30 2 * * *", "2026-03-29T01:30", "2026-03-30T00:30"),
        // Fall back: 02:30 happens twice; a fixed-hour job runs at the first only.
        ("Europe/Berlin", "30 2 * * *", "2026-10-25T00:00", "2026-10-25T00:30"),
        ("Europe/Berlin", "30 2 * * *", "2026-10-25T00:30", "2026-10-26T01:30"),
        // An every-hour job runs in both real hours.
        ("Europe/Berlin", "*/30 * * * *", "2026-10-25T00:30", "2026-10-25T01:00"),
        ("Europe/Berlin", "*/30 * * * *", "2026-03-29T00:30", "2026-03-29T01:00"),
        ("America/New_York", "30 2 * * *", "2026-03-08T06:59", "2026-03-08T07:30"),
        ("America/New_York", "30 1 * * *", "2026-11-01T04:00", "2026-11-01T05:30"),
        ("America/New_York", "30 1 * * *", "2026-11-01T05:30", "2026-11-02T06:30"),
        ("Australia/Sydney", "30 2 * * *", "2026-04-04T12:00", "2026-04-04T15:30"),
        // Far beyond the file's transitions: the POSIX footer rules.
        ("Europe/Berlin", "0 12 * * *", "2090-07-01T00:00", "2090-07-01T10:00"),
    ]

    @Test(arguments: zoneCases)
    func nextRunInZones(_ c: (String, String, String, String)) throws {
        let cron = try CronExpression(c.1)
        #expect(cron.next(after: utc(c.2), in: try systemZone(c.0)) == utc(c.3), "\(c.0) \(c.1) after \(c.2)")
    }

    @Test(arguments: zoneCases.filter { $0.0 == "Europe/Berlin" })
    func posixRulesAgreeWithTheFile(_ c: (String, String, String, String)) throws {
        #expect(try CronExpression(c.1).next(after: utc(c.2), in: berlinPosix) == utc(c.3))
    }

    static let bad = [
        "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *", "* * * * 8",
        "*/0 * * * *", "5-1 * * * *", "a * * * *", "-1 * * * *", "1-2-3 * * * *", "1/2/3 * * * *", ",1 * * * *",
        "* * * foo *", "$(id) * * * *", "0 0 30 2 *", "0 0 31 4,6 *", String(repeating: "1,", count: 60) + "1 * * * *",
        "* * * * *\u{0}", "* * * * mon\n", "１ * * * *", "999999999999999999999 * * * *", "*/99999999999999999999 * * * *",
    ]

    @Test(arguments: bad)
    func refusesBadExpressions(_ text: String) {
        #expect(throws: DomainError.self) { try CronExpression(text) }
    }

    @Test func scheduleRequestsValidateEveryField() throws {
        let ok = try CronScheduleRequest(JSON.parse(#"{"cron": "*/5 * * * *", "tz": "Europe/Berlin", "action": "restart"}"#))
        #expect(ok.tz == "Europe/Berlin" && ok.action == .restart && ok.command == nil)
        #expect(try CronScheduleRequest(JSON.parse(#"{"cron": "0 0 * * *", "action": "stop"}"#)).tz == "UTC")
        let cmd = try CronScheduleRequest(JSON.parse(#"{"cron": "0 0 * * *", "action": "command", "command": "say hi"}"#))
        #expect(cmd.command == "say hi" && cmd.action.job(command: cmd.command) == .console(command: "say hi"))
        for body in [
            #"{"action": "stop"}"#, #"{"cron": 5, "action": "stop"}"#, #"{"cron": "* * * * *"}"#,
            #"{"cron": "* * * * *", "action": "explode"}"#, #"{"cron": "* * * * *", "action": "command"}"#,
            #"{"cron": "* * * * *", "action": "command", "command": "a\nb"}"#,
            #"{"cron": "* * * * *", "action": "stop", "command": "x"}"#, #"{"cron": "* * * * *", "action": "stop", "tz": "../etc/passwd"}"#,
            #"{"cron": "* * * * *", "action": "stop", "tz": "/etc/localtime"}"#, #"{"cron": "* * * * *", "action": "stop", "tz": 1}"#,
            #"{"cron": "* * * * *", "action": "stop", "tz": "Europe/../../x"}"#,
        ] {
            #expect(throws: DomainError.self, "\(body)") { try CronScheduleRequest(JSON.parse(body)) }
        }
    }

    @Test func zoneNames() {
        for ok in ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT"] {
            #expect(CronScheduleRequest.isZoneName(ok))
        }
        for bad in ["", "/etc/passwd", "..", "Europe/..", "a//b", "Europe/Berlin\u{0}", "-x", String(repeating: "a", count: 65), "a b"] {
            #expect(!CronScheduleRequest.isZoneName(bad), "\(bad)")
        }
    }

    @Test func refusesBrokenZoneFiles() {
        for bytes in [[], Array("TZif".utf8), Array("TZif2".utf8) + [UInt8](repeating: 0xFF, count: 60), [UInt8](repeating: 0, count: 100)]
        {
            #expect(throws: DomainError.self) { try TimeZoneRules(name: "x", tzif: bytes) }
        }
    }

    /// The missed-run rule: late by less than one interval fires once; more is skipped. Either
    /// way the next run is after now.
    @Test func missedRuns() throws {
        let hourly = try CronExpression("0 * * * *")
        let due = utc("2026-03-01T10:00")
        #expect(DueRun.decide(due: due, now: due, cron: hourly, zone: .utc) == .fire(next: utc("2026-03-01T11:00")))
        #expect(DueRun.decide(due: due, now: due + 3599, cron: hourly, zone: .utc) == .fire(next: utc("2026-03-01T11:00")))
        #expect(DueRun.decide(due: due, now: due + 3600, cron: hourly, zone: .utc) == .skip(next: utc("2026-03-01T12:00")))
        #expect(DueRun.decide(due: due, now: due + 86400 * 3, cron: hourly, zone: .utc) == .skip(next: utc("2026-03-04T11:00")))
        let daily = try CronExpression("0 4 * * *")
        #expect(
            DueRun.decide(due: utc("2026-03-01T04:00"), now: utc("2026-03-01T20:00"), cron: daily, zone: .utc)
                == .fire(next: utc("2026-03-02T04:00")))
    }
}
