import PeonJSON
import Testing

@Suite struct JSONTests {
    @Test func roundTripKeepsKeyOrder() throws {
        let text = #"{"z":1,"a":[true,false,null],"m":{"k":"v\n\"q\""},"n":-1.5e3,"u":"é\u00e9😀"}"#
        let value = try JSON.parse(text)
        #expect(value.objectValue?.map(\.0) == ["z", "a", "m", "n", "u"])
        #expect(try JSON.parse(value.text) == value)
        #expect(value["n"] == .number(-1500))
        #expect(value["u"]?.stringValue == "éé😀")
    }

    @Test func integersPrintWithoutFraction() {
        #expect(JSON.int(2456).text == "2456")
        #expect(JSON.number(0.25).text == "0.25")
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "nul", "[1] x", "\"\\ud800\"",
        "{\"a\":1e999}",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try JSON.parse(ok) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func escapesControlCharacters() {
        #expect(JSON.string("a\u{01}\"\\").text == #""a\u0001\"\\""#)
    }
}
