import PeonCore
import Testing

@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let c = try Configuration(environment: [:], defaultWorkers: 2)
        #expect(c.dataDir == "./var")
        #expect(c.databasePath == "./var/peon.db")
        #expect(c.socketPath == "./var/run/api.sock")
        #expect(c.workers == 2)
        #expect(c.bootstrapAPIKey == nil)
        #expect(c.plansURL == nil)
    }

    @Test func peonDeploymentsSetAPI_KEY() throws {
        #expect(try Configuration(environment: ["API_KEY": "a-key-of-16-chars"], defaultWorkers: 1).bootstrapAPIKey == "a-key-of-16-chars")
        #expect(
            try Configuration(environment: ["API_KEY": "aaaaaaaaaaaaaaaa", "PEON_API_KEY": "bbbbbbbbbbbbbbbb"], defaultWorkers: 1)
                .bootstrapAPIKey == "bbbbbbbbbbbbbbbb")
    }

    /// `PEON_WAKE_IGNORE`: ranges a scheduler reads (it must be among the keys it reads at all);
    /// anything else stops it with a clear error.
    @Test func wakeIgnoreTakesRangesOnly() throws {
        #expect(Configuration.environmentKeys.contains("PEON_WAKE_IGNORE"))
        let c = try Configuration(environment: ["PEON_WAKE_IGNORE": "203.0.113.0/24, 127.0.0.2"], defaultWorkers: 1)
        #expect(c.wakeIgnore == [CIDR("203.0.113.0/24")!, CIDR("127.0.0.2/32")!])
        for bad in ["0.0.0.0/0", "10.0.0.0/8 -j ACCEPT", "example.com", Array(repeating: "10.0.0.1", count: 65).joined(separator: ",")] {
            #expect(throws: DomainError.self) { try Configuration(environment: ["PEON_WAKE_IGNORE": bad], defaultWorkers: 1) }
        }
    }

    @Test func retentionAndJobCapsHaveDefaults() throws {
        let c = try Configuration(environment: [:], defaultWorkers: 1)
        #expect(c.maxPendingJobsPerServer == 16 && c.maxPendingJobs == 256)
        #expect(c.retainDays == 30 && c.retainRows == 100_000 && c.statsRetainHours == 24)
        let set = try Configuration(environment: ["PEON_RETAIN_DAYS": "7", "PEON_MAX_PENDING_JOBS": "4"], defaultWorkers: 1)
        #expect(set.retainDays == 7 && set.maxPendingJobsPerServer == 4)
    }

    @Test(arguments: [
        ["PEON_WORKERS": "0"], ["PEON_WORKERS": "many"], ["PEON_API_KEY": "short"], ["PEON_API_KEY": "has a space"],
        // PEON's published default, bare, padded or in another case, and 8-15 character keys.
        ["API_KEY": "Zu88Zu88"], ["PEON_API_KEY": "Zu88Zu88Zu88Zu88"], ["PEON_API_KEY": "xxxxzu88zu88xxxxxx"],
        ["PEON_API_KEY": "fifteen-chars-1"],
        ["PEON_WORKERS": "99999999999999999999999"], ["PEON_RETAIN_DAYS": "0"], ["PEON_RETAIN_DAYS": "1e19"],
        ["PEON_MAX_PENDING_JOBS": "-1"], ["PEON_MAX_PENDING_JOBS_TOTAL": "0x10"],
        ["PEON_PLANS_URL": "file:///etc/passwd"], ["PEON_DATA_DIR": "/" + String(repeating: "d", count: 120)],
        // Plans are code: plain http only from this machine; a name that starts like loopback is not.
        ["PEON_PLANS_URL": "http://example.com/plans.tar.gz"], ["PEON_PLANS_URL": "http://127.0.0.1.nip.io/plans.tar.gz"],
        ["PEON_PLANS_URL": "https://user:pw@example.com/p.tar.gz"],
        ["PEON_PLANS_URL": "https://example.com/p.tar.gz", "PEON_PLANS_SHA256": "abc"],
        ["PEON_PLANS_URL": "https://example.com/mirror", "PEON_PLANS_SHA256": String(repeating: "a", count: 64)],
        ["PEON_PLANS_SHA256": String(repeating: "a", count: 64)],
    ])
    func refusesBadValues(_ env: [String: String]) {
        #expect(throws: DomainError.self) { try Configuration(environment: env, defaultWorkers: 2) }
    }

    @Test func plansComeOverTLSOrFromThisMachineAndMayBePinned() throws {
        for url in ["https://example.com/warplans.tar.gz", "http://127.0.0.1:8000/p.tar.gz", "http://localhost/x", "http://[::1]:81/m"] {
            #expect(try Configuration(environment: ["PEON_PLANS_URL": url], defaultWorkers: 1).plansURL == url)
        }
        let pin = String(repeating: "AB", count: 32)
        let c = try Configuration(
            environment: ["PEON_PLANS_URL": "https://example.com/w.tar.gz", "PEON_PLANS_SHA256": pin], defaultWorkers: 1)
        #expect(c.plansSHA256 == pin.lowercased())
    }
}
