import PeonFastCGI
import PeonHTTP
import Testing

@Suite struct RequestCGITests {
    @Test func buildsRequestFromNginxParameters() {
        let r = Request(
            cgiParameters: [
                "REQUEST_METHOD": "PUT", "REQUEST_URI": "/api/v1/plan/%2e%2e?x=1", "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": "2", "REMOTE_ADDR": "203.0.113.7", "REQUEST_ID": "abc123",
                "HTTP_X_API_KEY": "k-123", "HTTP_ACCEPT": "application/json",
            ], body: Array("{}".utf8))
        #expect(r.method == "PUT")
        #expect(r.rawPath == "/api/v1/plan/%2e%2e")  // as sent: no normalization before validation
        #expect(r.query == "x=1")
        #expect(r.header("X-Api-Key") == "k-123")
        #expect(r.header("accept") == "application/json")
        #expect(r.header("content-type") == "application/json")
        #expect(r.remoteAddress == "203.0.113.7")
        #expect(r.requestID == "abc123")
        #expect(r.body == Array("{}".utf8))
    }

    @Test func missingParametersHaveSafeDefaults() {
        let r = Request(cgiParameters: [:], body: [])
        #expect(r.method == "GET")
        #expect(r.rawPath == "/")
        #expect(r.header("x-api-key") == nil)
        #expect(r.remoteAddress == "")
    }
}
