import PeonCore
import Testing

/// Hostile text that must never become a name: traversal, shell, whitespace, unicode, length.
let hostileNames = [
    "", ".", "..", "../etc", "a/b", "a.b", "x;id", "$(id)", "`id`", "a b", " a", "a\n", "a\0b", "Valheim", "välheim", "😀",
    "a|b", "a&b", "-", String(repeating: "a", count: 33), String(repeating: "a", count: 10_000), "%2e%2e", "${API_KEY}",
]

@Suite struct IdentifierTests {
    @Test(arguments: hostileNames)
    func refusesHostileNames(_ text: String) {
        #expect(!Identifier.isValid(text) || text == "-")
        if text != "-" {
            #expect(throws: DomainError.self) { try GameUID(validating: text) }
        }
    }

    @Test(arguments: ["valheim", "7daystodie", "cs2", "a", "a-b_c", String(repeating: "z", count: 32)])
    func acceptsNames(_ text: String) throws {
        #expect(try GameUID(validating: text).rawValue == text)
    }

    @Test func quotedIsBoundedAndPrintable() {
        let q = Identifier.quoted(String(repeating: "x", count: 10_000) + "\n")
        #expect(q.count <= 41)
        #expect(Identifier.quoted("a\nb$(id)") == "a?b$(id)")
    }

    @Test func scopesAreOrdered() {
        #expect(Scope.admin.allows(.operate))
        #expect(Scope.operate.allows(.read))
        #expect(!Scope.read.allows(.operate))
        #expect(!Scope.operate.allows(.admin))
    }
}
