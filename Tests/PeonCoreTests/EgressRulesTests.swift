import PeonCore
import PeonJSON
import Testing

@Suite struct EgressRulesTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"), ("169.254.169.254", "169.254.169.254/32"), ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::/64", "fd00::/64"), ("::1", "::1/128"), ("FE80::1:2", "fe80::1:2/128"), ("::ffff:10.1.2.3/128", "::ffff:10.1.2.3/128"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8/128"), ("::", "::/128"),
    ])
    func parsesRanges(_ text: String, _ canonical: String) {
        #expect(CIDR(text)?.description == canonical)
    }

    @Test(arguments: [
        "", "10.0.0.0/33", "10.0.0/8", "256.0.0.1", "10.0.0.1/", "10.0.0.1/8/8", "1.2.3.4 -j ACCEPT", "10.0.0.0/8;reboot",
        "1:2:3:4:5:6:7:8:9", "1::2::3", "fe80::1%eth0", "::/129", "-s", "01234::", "1:::2", "10.0.0.0/-1", "10.0.0.0/08x",
        "$(id)", "10.0.0.0\n/8",
    ])
    func refusesWhatIsNoRange(_ text: String) {
        #expect(CIDR(text) == nil, "\(text)")
    }

    @Test func interfacesAreNamesIptablesTakes() {
        #expect(EgressRules(allow: [], interfaces: ["peon+", "docker0", "br-0123456789ab"]) != nil)
        for bad in ["", "+", "a b", "-j", "sixteen-chars-xx", "peon+;", "eth0\n-A"] {
            #expect(EgressRules(allow: [], interfaces: [bad]) == nil, "\(bad)")
        }
    }

    static let dockerListing = """
        -P INPUT ACCEPT
        -P FORWARD DROP
        -P OUTPUT ACCEPT
        -N DOCKER
        -N DOCKER-USER
        -A FORWARD -j DOCKER-USER
        -A FORWARD -o docker0 -j DOCKER
        -A DOCKER-USER -j RETURN

        """

    /// A fresh host with Docker: both chains, the allowed ranges before the drops, jumps inserted
    /// first in DOCKER-USER and INPUT; IPv6 ranges stay out of the IPv4 table.
    @Test func installsOnADockerHost() throws {
        let rules = try #require(
            EgressRules(allow: [CIDR("169.254.169.254")!, CIDR("fd00::/8")!], interfaces: [EgressRules.bridgePattern]))
        #expect(
            rules.restore(.ipv4, listing: Self.dockerListing) == """
                *filter
                :PEON-EGRESS - [0:0]
                :PEON-INPUT - [0:0]
                -A PEON-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
                -A PEON-EGRESS -d 169.254.169.254/32 -j RETURN
                -A PEON-EGRESS -d 169.254.0.0/16 -j DROP
                -A PEON-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
                -A PEON-INPUT -d 169.254.169.254/32 -j RETURN
                -A PEON-INPUT -j DROP
                -I INPUT 1 -i peon+ -j PEON-INPUT
                -I DOCKER-USER 1 -i peon+ -j PEON-EGRESS
                COMMIT

                """)
        let v6 = rules.restore(.ipv6, listing: "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n")
        #expect(v6.contains("-A PEON-EGRESS -d fd00::/8 -j RETURN\n-A PEON-EGRESS -d fe80::/10 -j DROP\n"))
        #expect(v6.contains("--icmpv6-type 135 -j RETURN") && v6.contains("--icmpv6-type 136 -j RETURN"))
        #expect(!v6.contains("169.254"))
        // No DOCKER-USER (an engine with --iptables=false): FORWARD itself.
        #expect(v6.contains("-I FORWARD 1 -i peon+ -j PEON-EGRESS\n"))
    }

    /// Run again on its own result: the chains are rewritten, no jump is added twice; a jump no
    /// longer wanted and a duplicate are deleted.
    @Test func isIdempotentAndRemovesStaleJumps() throws {
        let rules = try #require(EgressRules(allow: [], interfaces: ["peon+", "docker0"]))
        let installed =
            Self.dockerListing + """
                -N PEON-EGRESS
                -N PEON-INPUT
                -A INPUT -i peon+ -j PEON-INPUT
                -A INPUT -i docker0 -j PEON-INPUT
                -A FORWARD -i peon+ -j PEON-EGRESS
                -A DOCKER-USER -i peon+ -j PEON-EGRESS
                -A DOCKER-USER -i docker0 -j PEON-EGRESS
                -A DOCKER-USER -i peon+ -j PEON-EGRESS
                -A PEON-INPUT -j DROP

                """
        let text = rules.restore(.ipv4, listing: installed)
        #expect(!text.contains("-I "))
        let deleted = text.split(separator: "\n").filter { $0.hasPrefix("-D ") }
        #expect(deleted == ["-D FORWARD -i peon+ -j PEON-EGRESS", "-D DOCKER-USER -i peon+ -j PEON-EGRESS"])
        // Fewer interfaces now: the default bridge's jumps go.
        let fewer = try #require(EgressRules(allow: [], interfaces: ["peon+"])).restore(.ipv4, listing: installed)
        #expect(fewer.contains("-D INPUT -i docker0 -j PEON-INPUT\n") && fewer.contains("-D DOCKER-USER -i docker0 -j PEON-EGRESS\n"))
    }

    @Test func removalTakesOnlyPeonsRules() {
        let text = EgressRules.removal(listing: Self.dockerListing + "-N PEON-INPUT\n-A INPUT -i peon+ -j PEON-INPUT\n")
        #expect(
            text == """
                *filter
                :PEON-EGRESS - [0:0]
                :PEON-INPUT - [0:0]
                -D INPUT -i peon+ -j PEON-INPUT
                -X PEON-EGRESS
                -X PEON-INPUT
                COMMIT

                """)
        #expect(EgressRules.installed("-N PEON-EGRESS\n") && !EgressRules.installed(Self.dockerListing))
    }

    @Test func configurationReadsTheAllowList() throws {
        #expect(try Configuration(environment: [:], defaultWorkers: 1).gameEgress == .restricted(allow: []))
        let c = try Configuration(environment: ["PEON_GAME_EGRESS_ALLOW": "169.254.169.254/32, fd00::/8"], defaultWorkers: 1)
        #expect(c.gameEgress == .restricted(allow: [CIDR("169.254.169.254/32")!, CIDR("fd00::/8")!]))
        #expect(try Configuration(environment: ["PEON_GAME_EGRESS": "open"], defaultWorkers: 1).gameEgress == .open)
        for env in [["PEON_GAME_EGRESS": "closed"], ["PEON_GAME_EGRESS_ALLOW": "10.0.0.0/8 -j ACCEPT"], ["PEON_GAME_EGRESS_ALLOW": "x"]] {
            #expect(throws: DomainError.self) { try Configuration(environment: env, defaultWorkers: 1) }
        }
    }

    /// Every game bridge is `peon` + 11 hex digits (15 bytes, the kernel's limit), one per server.
    @Test func bridgesHavePeonsNames() throws {
        let plan = try Plan(document: JSON.parse(valheimPlan), expectedGameUID: GameUID(validating: "valheim"))
        var seen = Set<String>()
        for text in ["valheim.a", "valheim.b", "valheim.riverstead"] {
            let spec = ServerSpec(uid: try ServerUID(validating: text), plan: plan, settings: [], ports: [], directory: "/d")
            #expect(spec.bridgeName.utf8.count == 15 && spec.bridgeName.hasPrefix("peon"))
            #expect(spec.bridgeName.dropFirst(4).allSatisfy { $0.isHexDigit })
            seen.insert(spec.bridgeName)
        }
        #expect(seen.count == 3)
    }
}
