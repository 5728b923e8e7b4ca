/// The first datagrams of Luanti's (Minetest's) UDP protocol, as a client opens a connection:
/// enough to ask whether a server accepts players, and to tell a client from a scan.
///
/// Every packet starts with the protocol id `4F 45 74 03`, the sender's peer id (u16, big-endian;
/// 0 before the server assigned one, the server is 1) and the channel (u8), then a type: 0 control
/// (0 ack, 1 set peer id, 2 ping, 3 disconnect), 1 original (a command), 3 reliable (a u16 sequence
/// number, the first 65500, then another packet).
public enum LuantiPacket {
    public static let protocolID: [UInt8] = [0x4F, 0x45, 0x74, 0x03]

    /// What Luanti's own server list sends to see that a server is up: an original packet with no
    /// command from peer 0. The server makes a peer for it and sends the new peer's id.
    public static let probe: [UInt8] = protocolID + [0x00, 0x00, 0x00, 0x01]

    /// A packet of Luanti's protocol from the server (peer 1).
    public static func isServerPacket(_ datagram: [UInt8]) -> Bool {
        datagram.count >= 8 && datagram.starts(with: protocolID) && datagram[4] == 0x00 && datagram[5] == 0x01
    }

    /// The peer id a server's SET_PEER_ID packet assigns (reliable or not), nil for any other packet.
    public static func assignedPeer(_ datagram: [UInt8]) -> UInt16? {
        guard isServerPacket(datagram) else { return nil }
        let control = datagram[7] == 0x03 ? 10 : 7
        guard datagram.count >= control + 4, datagram[control] == 0x00, datagram[control + 1] == 0x01 else { return nil }
        return UInt16(datagram[control + 2]) << 8 | UInt16(datagram[control + 3])
    }

    /// The control packet that ends peer `peer`'s connection, so a probe leaves no peer behind
    /// waiting for its time-out on the server.
    public static func disconnect(peer: UInt16) -> [UInt8] {
        protocolID + [UInt8(peer >> 8), UInt8(peer & 0xFF), 0x00, 0x00, 0x03]
    }

    /// Whether a datagram opens a connection as a real client's first packet does: the protocol id
    /// from peer 0, reliable (sequence 65500) around an original packet. Any bytes are not.
    public static func isClientHello(_ datagram: [UInt8]) -> Bool {
        datagram.count >= 11 && datagram.starts(with: protocolID) && datagram[4] == 0 && datagram[5] == 0 && datagram[7] == 0x03
            && datagram[8] == 0xFF && datagram[9] == 0xDC && datagram[10] == 0x01
    }
}
