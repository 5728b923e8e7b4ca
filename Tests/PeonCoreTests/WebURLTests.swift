import PeonCore
import Testing

@Suite struct WebURLTests {
    @Test func takesSchemeHostAndPortApart() throws {
        let u = try #require(WebURL("https://Example.com:8443/hook?x=1"))
        #expect(u.scheme == "https" && u.host == "example.com" && u.port == 8443 && !u.isLoopback)
        #expect(WebURL("http://[::1]/x")?.bareHost == "::1")
        #expect(WebURL("http://127.0.0.1/x")?.port == 80)
    }

    /// Loopback is a literal, never a name that starts like one.
    @Test(arguments: ["http://127.0.0.1/", "http://127.10.0.5:9/", "http://localhost/", "http://[::1]:8080/"])
    func loopback(_ url: String) { #expect(WebURL(url)?.isLoopback == true) }

    @Test(arguments: [
        "http://127.x.10.0.0.5.nip.io/", "http://127.0.0.1.nip.io/", "http://1270.0.0.1/", "http://127.0.0.01/", "http://[::2]/",
        "http://0x7f.0.0.1/", "https://example.com/",
    ])
    func notLoopback(_ url: String) { #expect(WebURL(url)?.isLoopback != true) }

    @Test(arguments: [
        "ftp://example.com/", "https://", "https://user@example.com/", "https://a b/", "https://ex\\ample.com/", "https://[::1/",
        "https://example.com:0/", "https://example.com:99999/", "https://example.com:x/", "http:///path",
    ])
    func refuses(_ url: String) { #expect(WebURL(url) == nil) }
}
