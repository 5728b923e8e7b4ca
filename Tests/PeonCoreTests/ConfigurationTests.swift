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
        #expect(try Configuration(environment: ["API_KEY": "Zu88Zu88"], defaultWorkers: 1).bootstrapAPIKey == "Zu88Zu88")
        #expect(
            try Configuration(environment: ["API_KEY": "aaaaaaaa", "PEON_API_KEY": "bbbbbbbb"], defaultWorkers: 1).bootstrapAPIKey
                == "bbbbbbbb")
    }

    @Test(arguments: [
        ["PEON_WORKERS": "0"], ["PEON_WORKERS": "many"], ["PEON_API_KEY": "short"], ["PEON_API_KEY": "has a space"],
        ["PEON_PLANS_URL": "file:///etc/passwd"], ["PEON_DATA_DIR": "/" + String(repeating: "d", count: 120)],
    ])
    func refusesBadValues(_ env: [String: String]) {
        #expect(throws: DomainError.self) { try Configuration(environment: env, defaultWorkers: 2) }
    }
}
