import PeonCore
import PeonJSON
import Testing

@Suite struct TimestampTests {
    @Test func parsesEpochAndISO8601() {
        #expect(Timestamp.parse("0") == 0)
        #expect(Timestamp.parse("1700000000") == 1_700_000_000)
        #expect(Timestamp.parse("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parse("2026-11-29T21:00:00Z") == 1_795_986_000)
        #expect(Timestamp.parse("2026-11-29T22:00:00+01:00") == 1_795_986_000)
        #expect(Timestamp.parse("2026-11-29T21:00:00.123Z") == 1_795_986_000)
        #expect(Timestamp.parse("2024-02-29") == 1_709_164_800)
        #expect(Timestamp.parse(JSON.number(5)) == 5)
        #expect(Timestamp.parse(JSON.string("2030-01-01T00:00:00Z")) == 1_893_456_000)
    }

    @Test(arguments: [
        "", " ", "-1", "2023-02-29", "2026-13-01", "2026-00-10", "2026-11-31", "2026-11-29T24:00:00Z", "2026-11-29T21:00:00",
        "2026-11-29T21:00:00Zjunk", "2026-11-29T21:00:00+1:00", "1969-12-31T23:59:59Z", "10000-01-01", "99999999999999999999", "1e9",
        "2026-11-29T21:00:00.Z", "2026-11-29T21:00:00.1234567890Z", "２０２６-11-29", "2026-11-29T21:00:00\u{0}Z", "$(id)", "../..",
        String(repeating: "9", count: 10_000),
    ])
    func refusesHostileText(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test func refusesHostileNumbers() {
        for v: JSON in [.number(1e19), .number(-1), .number(0.5), .number(.nan), .bool(true), .null, .array([])] {
            #expect(Timestamp.parse(v) == nil)
        }
    }
}
