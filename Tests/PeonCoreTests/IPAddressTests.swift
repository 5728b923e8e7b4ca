import PeonCore
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        "127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
        "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::10.0.0.1", "::10.0.0.1",
    ])
    func internalAddressesAreNotPublic(_ text: String) throws {
        #expect(try #require(IPAddress(text)).isPublic == false)
    }

    @Test(arguments: ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
    func publicAddresses(_ text: String) throws {
        #expect(try #require(IPAddress(text)).isPublic)
    }

    @Test(arguments: ["127.1", "0x7f.0.0.1", "1.2.3", "::ffff:1.2.3", "example.com", ""])
    func shorthandIsNotAnAddress(_ text: String) { #expect(IPAddress(text) == nil) }

    @Test func blocksContainTheirAddresses() throws {
        let block = try #require(CIDR("10.0.0.0/8"))
        #expect(block.contains(IPAddress("10.255.0.1")!) && !block.contains(IPAddress("11.0.0.1")!))
        #expect(try #require(CIDR("fd00::/8")).contains(IPAddress("fd12::5")!))
        #expect(try #require(CIDR("192.168.1.7")).prefix == 32)
        #expect(CIDR("10.0.0.0/33") == nil && CIDR("10.0.0.0/x") == nil && CIDR("10.0.0.0/") == nil)
    }

    @Test func listsRefuseEverything() throws {
        #expect(try CIDR.list(" 10.0.0.0/8, 127.0.0.1 ,", field: "X").count == 2)
        #expect(try CIDR.list("", field: "X").isEmpty)
        for bad in ["0.0.0.0/0", "::/0", "10.0.0.0/8,nope"] {
            #expect(throws: DomainError.self) { try CIDR.list(bad, field: "X") }
        }
    }
}
