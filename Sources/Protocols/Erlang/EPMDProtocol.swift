/// The requests and replies of epmd, the Erlang port mapper (TCP 4369). Pure.
///
/// Each request is a 2-byte big-endian length and a body; replies have no length.
public enum EPMDProtocol {
    /// The port epmd listens on unless `ERL_EPMD_PORT` says otherwise.
    public static let defaultPort = 4369

    /// The outcome of an `ALIVE2_REQ`.
    public enum Registration: Sendable, Equatable {
        /// Registered; the node's incarnation is `creation`.
        case registered(creation: UInt32)
        /// Refused with this result code: the name is in use on this host.
        case refused(result: UInt8)
    }

    /// `ALIVE2_REQ`: register `name` (the part before `@`) as listening on `port`, speaking
    /// distribution versions 6 to 6, as a normal (77) or hidden (72) node.
    public static func alive2Request(name: String, port: UInt16, hidden: Bool) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        var body: [UInt8] = [120]
        body.append(contentsOf: u16(port))
        body.append(hidden ? 72 : 77)
        body.append(0)  // protocol: TCP/IPv4
        body.append(contentsOf: u16(6))  // highest version
        body.append(contentsOf: u16(6))  // lowest version
        body.append(contentsOf: u16(UInt16(nameBytes.count)))
        body.append(contentsOf: nameBytes)
        body.append(contentsOf: u16(0))  // no extra
        return u16(UInt16(body.count)) + body
    }

    /// The reply to `ALIVE2_REQ` at the start of `bytes`, or nil when more bytes are needed.
    ///
    /// Accepts `ALIVE2_X_RESP` (118, 32-bit creation), which epmd sends for version 6, and
    /// the older `ALIVE2_RESP` (121, 16-bit creation). A non-zero result is a refusal.
    ///
    /// - Throws: ``ErlangTransportError`` (`epmd_protocol`) for anything else.
    public static func parseAlive2Response(_ bytes: [UInt8]) throws(ErlangTransportError) -> Registration? {
        guard let tag = bytes.first else { return nil }
        guard tag == 118 || tag == 121 else {
            throw ErlangTransportError(.epmdProtocol, "epmd answered the registration with tag \(tag), not 118 or 121")
        }
        guard bytes.count >= 2 else { return nil }
        guard bytes[1] == 0 else { return .refused(result: bytes[1]) }
        if tag == 118 {
            guard bytes.count >= 6 else { return nil }
            let creation = bytes[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return .registered(creation: creation)
        }
        guard bytes.count >= 4 else { return nil }
        return .registered(creation: UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
    }

    /// The part of a node name before `@` (`brain` in `brain@127.0.0.1`).
    public static func aliveName(of node: String) -> String {
        String(node.prefix { $0 != "@" })
    }

    private static func u16(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}
