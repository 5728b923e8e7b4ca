import PeonCore
import Testing

@testable import PeonScheduler

/// A webhook goes only to public addresses, or to networks PEON_WEBHOOK_ALLOW names, and to the
/// very address that was checked.
@Suite struct WebhookTargetTests {
    static func resolver(_ table: [String: [String]]) -> (String) -> [IPAddress] {
        { host in (table[host] ?? []).compactMap(IPAddress.init) }
    }

    @Test(arguments: [
        "http://127.0.0.1:8080/hook", "https://10.0.0.5/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/x",
        "https://[fd00::5]/x", "https://[::ffff:127.0.0.1]/x", "https://internal.example/hook", "https://127.x.10.0.0.5.nip.io/",
        "http://localhost:9/",
    ])
    func internalTargetsAreRefused(_ url: String) {
        let resolve = Self.resolver([
            "internal.example": ["10.1.2.3", "fd00::7"], "127.x.10.0.0.5.nip.io": ["127.10.0.5"], "localhost": ["127.0.0.1", "::1"],
        ])
        #expect(throws: WebhookTarget.Refusal.self) { try WebhookTarget.check(url, allow: [], resolve: resolve) }
    }

    @Test func aPublicAddressIsPinned() throws {
        let resolve = Self.resolver(["hooks.example": ["10.0.0.9", "93.184.216.34"], "v6.example": ["2606:4700::1111"]])
        let target = try WebhookTarget.check("https://hooks.example/x", allow: [], resolve: resolve)
        #expect(target.pin == "hooks.example:443:93.184.216.34")
        #expect(try WebhookTarget.check("https://v6.example:8443/", allow: [], resolve: resolve).pin == "v6.example:8443:[2606:4700::1111]")
    }

    @Test func allowedNetworksAreDeliveredTo() throws {
        let allow = [CIDR("127.0.0.1/32")!, CIDR("10.0.0.0/8")!]
        #expect(try WebhookTarget.check("http://127.0.0.1:8080/hook", allow: allow).pin == "127.0.0.1:8080:127.0.0.1")
        let resolve = Self.resolver(["lan.example": ["10.4.4.4"]])
        #expect(try WebhookTarget.check("https://lan.example/", allow: allow, resolve: resolve).address == IPAddress("10.4.4.4"))
        #expect(throws: WebhookTarget.Refusal.self) { try WebhookTarget.check("http://127.0.0.2:8080/", allow: allow) }
    }

    @Test func anUnknownHostIsRefused() {
        #expect(throws: WebhookTarget.Refusal.self) {
            try WebhookTarget.check("https://nowhere.invalid/", allow: [], resolve: { _ in [] })
        }
    }
}
