import Crypto
import Engine

/// The Erlang distribution handshake as the accepting side: a pure state machine.
///
/// Feed it each handshake message of the peer (the body of a 2-byte-length frame, as
/// ``DistributionFrameDecoder`` yields it) with ``receive(_:)``; it answers with directives
/// to carry out in order: bytes to send (already framed with their 2-byte length), a close
/// with the reason, or the established link's peer. It does no I/O and reads no clock; the
/// challenge comes in from the caller, so every step is reproducible byte for byte.
///
/// The sequence, for a peer speaking version 6 (OTP 23 and later, erl_interface):
/// ```
/// peer: 'N' Flags:64 Creation:32 Nlen:16 Name   →  us: 's' "ok", then
///                                                    'N' Flags:64 Challenge:32 Creation:32 Nlen:16 OurName
/// peer: 'r' PeerChallenge:32 Digest:16          →  us: 'a' Digest:16, established
/// ```
/// A version 5 peer (OTP 23/24 dialling an unknown node) sends `'n' 5:16 Flags:32 Name`
/// first, and the complement `'c' FlagsHigh:32 Creation:32` between our challenge and its
/// reply. The digest of a challenge is `MD5(cookie ++ decimal(challenge))`; a reply whose
/// digest does not match our challenge is the cookie check failing, and the connection is
/// closed without an answer.
public struct DistributionHandshake: Sendable {
    /// The node at the other end of an established handshake.
    public struct Peer: Sendable, Equatable {
        /// Its full node name, e.g. `client@127.0.0.1`.
        public var name: String
        /// The flags it announced.
        public var flags: DistributionFlags
        /// The flags the link uses: both sides' flags.
        public var negotiatedFlags: DistributionFlags
        /// Its incarnation.
        public var creation: UInt32
        /// The handshake version its name message used: 6 (`'N'`) or 5 (`'n'`).
        public var version: Int

        /// True for a hidden node (a C node, `erl -hidden`): it does not announce `published`.
        public var isHidden: Bool { !flags.contains(.published) }
    }

    /// One thing to do, in order.
    public enum Directive: Sendable, Equatable {
        /// Write these bytes, already framed.
        case send([UInt8])
        /// Close the connection; the handshake failed for this reason.
        case close(ErlangTransportError)
        /// The handshake succeeded: switch to 4-byte framing and serve this peer.
        case established(Peer)
    }

    /// Who we are in the handshake.
    public struct Configuration: Sendable {
        /// Our full node name (`brain@127.0.0.1`): it must equal the name the peer dialled.
        public var localNode: String
        /// Our creation, as epmd returned it.
        public var creation: UInt32
        /// The cookie both sides must share.
        public var cookie: [UInt8]
        /// The flags we announce.
        public var flags: DistributionFlags
        /// The flags a peer must announce; one missing is answered `not_allowed`.
        public var requiredFlags: DistributionFlags
        /// The longest peer node name accepted, in bytes, checked on the declared length before
        /// the name is read. Whatever this says, a name of more than 255 characters (the most an
        /// atom holds) is refused too.
        public var maxNameBytes: Int

        /// A configuration with Brain's flags: ``DistributionFlags/advertised(hidden:)`` for a
        /// visible node, requiring ``DistributionFlags/mandatory25``.
        public init(
            localNode: String, creation: UInt32, cookie: [UInt8],
            flags: DistributionFlags = .advertised(hidden: false),
            requiredFlags: DistributionFlags = .mandatory25, maxNameBytes: Int = 1020
        ) {
            self.localNode = localNode
            self.creation = creation
            self.cookie = cookie
            self.flags = flags
            self.requiredFlags = requiredFlags
            self.maxNameBytes = maxNameBytes
        }
    }

    private enum State: Sendable {
        case awaitingName
        case awaitingComplement(Peer)
        case awaitingReply(Peer)
        case established
        case closed
    }

    /// The settings this handshake runs with.
    public let configuration: Configuration
    private let challenge: UInt32
    private var state = State.awaitingName

    /// A handshake that will challenge the peer with `challenge`; pick it at random.
    public init(configuration: Configuration, challenge: UInt32) {
        self.configuration = configuration
        self.challenge = challenge
    }

    /// True once the handshake has either succeeded or failed: no message is expected.
    public var isFinished: Bool {
        switch state {
        case .established, .closed: true
        case .awaitingName, .awaitingComplement, .awaitingReply: false
        }
    }

    /// Handles the next handshake message of the peer (without its 2-byte length).
    public mutating func receive(_ message: [UInt8]) -> [Directive] {
        switch state {
        case .awaitingName:
            return receiveName(message)
        case .awaitingComplement(let peer):
            return receiveComplement(message, peer: peer)
        case .awaitingReply(let peer):
            return receiveReply(message, peer: peer)
        case .established, .closed:
            return fail(.handshakeMalformed, "a handshake message arrived after the handshake ended")
        }
    }

    // MARK: Steps

    private mutating func receiveName(_ message: [UInt8]) -> [Directive] {
        var reader = ByteReader(message)
        guard let tag = reader.u8() else { return fail(.handshakeMalformed, "empty name message") }
        let flags: DistributionFlags
        let creation: UInt32
        let nameBytes: ArraySlice<UInt8>
        let version: Int
        switch tag {
        case UInt8(ascii: "N"):
            guard let rawFlags = reader.u64(), let peerCreation = reader.u32(), let length = reader.u16() else {
                return fail(.handshakeMalformed, "'N' name message of \(message.count) bytes is too short")
            }
            guard Int(length) <= configuration.maxNameBytes else {
                return notAllowed("the node name of \(length) bytes is over the \(configuration.maxNameBytes)-byte limit")
            }
            guard let name = reader.bytes(Int(length)) else {
                return fail(.handshakeMalformed, "'N' name message declares a \(length)-byte name, \(reader.remaining) bytes follow")
            }
            // Bytes after the name are allowed and ignored, as OTP does.
            flags = DistributionFlags(rawValue: rawFlags)
            creation = peerCreation
            nameBytes = name
            version = 6
        case UInt8(ascii: "n"):
            guard let peerVersion = reader.u16(), let rawFlags = reader.u32() else {
                return fail(.handshakeMalformed, "'n' name message of \(message.count) bytes is too short")
            }
            guard peerVersion == 5 else {
                return notAllowed("handshake version \(peerVersion) is not supported (5 and 6 are)")
            }
            guard reader.remaining <= configuration.maxNameBytes else {
                return notAllowed("the node name of \(reader.remaining) bytes is over the \(configuration.maxNameBytes)-byte limit")
            }
            flags = DistributionFlags(rawValue: UInt64(rawFlags))
            creation = 0
            nameBytes = reader.rest()
            version = 5
        default:
            return fail(.handshakeMalformed, "expected a name message ('N' or 'n'), got tag \(tag)")
        }
        guard let name = Self.validNodeName(nameBytes) else {
            return notAllowed("\(Self.describe(nameBytes)) is not a node name (name@host)")
        }
        // The name becomes an atom (the node of every pid and reference from the peer), and an
        // atom holds at most 255 characters: OTP fails such a handshake too.
        let characters = name.unicodeScalars.count
        guard characters <= Atom.maximumLength else {
            return notAllowed("the node name of \(characters) characters is over the \(Atom.maximumLength)-character atom limit")
        }
        let missing = configuration.requiredFlags.subtracting(flags)
        guard missing.isEmpty else {
            return notAllowed("\(name) lacks the mandatory distribution flags \(missing)")
        }
        guard !flags.contains(.nameMe) else {
            return notAllowed("\(name) asks to be given a name, which this node does not do")
        }
        let peer = Peer(
            name: name, flags: flags, negotiatedFlags: flags.intersection(configuration.flags),
            creation: creation, version: version)
        // A version 5 peer announced only the low 32 flag bits; the complement brings the rest.
        state = version == 5 ? .awaitingComplement(peer) : .awaitingReply(peer)
        return [.send(Self.status("ok")), .send(challengeMessage())]
    }

    private mutating func receiveComplement(_ message: [UInt8], peer: Peer) -> [Directive] {
        var reader = ByteReader(message)
        guard reader.u8() == UInt8(ascii: "c"), let high = reader.u32(), let creation = reader.u32(),
            reader.remaining == 0
        else {
            return fail(.handshakeMalformed, "expected the complement 'c' FlagsHigh:32 Creation:32 from \(peer.name)")
        }
        var completed = peer
        completed.flags = DistributionFlags(rawValue: peer.flags.rawValue | UInt64(high) << 32)
        completed.negotiatedFlags = completed.flags.intersection(configuration.flags)
        completed.creation = creation
        guard !completed.flags.contains(.nameMe) else {
            return fail(.handshakeNotAllowed, "\(peer.name) asks to be given a name, which this node does not do")
        }
        state = .awaitingReply(completed)
        return []
    }

    private mutating func receiveReply(_ message: [UInt8], peer: Peer) -> [Directive] {
        var reader = ByteReader(message)
        guard reader.u8() == UInt8(ascii: "r"), let peerChallenge = reader.u32(), let digest = reader.bytes(16),
            reader.remaining == 0
        else {
            return fail(.handshakeMalformed, "expected the challenge reply 'r' Challenge:32 Digest:16 from \(peer.name)")
        }
        let expected = Self.digest(challenge: challenge, cookie: configuration.cookie)
        // Compare every byte whatever the first difference, so timing reveals nothing.
        var difference: UInt8 = 0
        for (index, byte) in digest.enumerated() { difference |= byte ^ expected[index] }
        guard difference == 0 else {
            return fail(.wrongCookie, "\(peer.name) answered the challenge with another cookie")
        }
        state = .established
        var ack: [UInt8] = [UInt8(ascii: "a")]
        ack.append(contentsOf: Self.digest(challenge: peerChallenge, cookie: configuration.cookie))
        return [.send(Self.framed(ack)), .established(peer)]
    }

    // MARK: Messages

    private func challengeMessage() -> [UInt8] {
        let name = Array(configuration.localNode.utf8)
        var body: [UInt8] = [UInt8(ascii: "N")]
        body.reserveCapacity(19 + name.count)
        Self.append(configuration.flags.rawValue, bytes: 8, to: &body)
        Self.append(UInt64(challenge), bytes: 4, to: &body)
        Self.append(UInt64(configuration.creation), bytes: 4, to: &body)
        Self.append(UInt64(name.count), bytes: 2, to: &body)
        body.append(contentsOf: name)
        return Self.framed(body)
    }

    /// The framed status message `'s' text`.
    static func status(_ text: String) -> [UInt8] {
        framed([UInt8(ascii: "s")] + Array(text.utf8))
    }

    /// `body` behind its 2-byte big-endian length.
    static func framed(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 2)
        append(UInt64(body.count), bytes: 2, to: &out)
        out.append(contentsOf: body)
        return out
    }

    private static func append(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
        for index in stride(from: bytes - 1, through: 0, by: -1) {
            out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))))
        }
    }

    /// The answer to `challenge` with `cookie`: `MD5(cookie ++ decimal(challenge))`, the
    /// challenge written as unsigned decimal text.
    public static func digest(challenge: UInt32, cookie: [UInt8]) -> [UInt8] {
        var input = cookie
        input.append(contentsOf: String(challenge).utf8)
        return Array(Insecure.MD5.hash(data: input))
    }

    // MARK: Failures

    private mutating func fail(_ code: ErlangTransportError.Code, _ message: String) -> [Directive] {
        state = .closed
        return [.close(ErlangTransportError(code, message))]
    }

    /// Refuses the peer with the status `not_allowed` before closing, so that it can tell why.
    private mutating func notAllowed(_ message: String) -> [Directive] {
        state = .closed
        return [.send(Self.status("not_allowed")), .close(ErlangTransportError(.handshakeNotAllowed, message))]
    }

    /// The name when it is UTF-8 text `name@host` with both parts non-empty and no control
    /// characters.
    static func validNodeName(_ bytes: ArraySlice<UInt8>) -> String? {
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")), at > bytes.startIndex,
            at < bytes.endIndex - 1, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }),
            let name = String(validating: bytes, as: UTF8.self)
        else { return nil }
        return name
    }

    private static func describe(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(64), as: UTF8.self)
        return "\"" + String(text.unicodeScalars.map { $0.value < 0x20 ? "?" : Character($0) }) + "\""
    }
}

/// Reads big-endian integers and byte runs from a message, returning nil past its end.
struct ByteReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - position }

    mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16? { integer(2).map { UInt16($0) } }
    mutating func u32() -> UInt32? { integer(4).map { UInt32($0) } }
    mutating func u64() -> UInt64? { integer(8) }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func rest() -> ArraySlice<UInt8> {
        defer { position = bytes.count }
        return bytes[position...]
    }

    private mutating func integer(_ count: Int) -> UInt64? {
        guard remaining >= count else { return nil }
        var value: UInt64 = 0
        for index in position..<position + count { value = value << 8 | UInt64(bytes[index]) }
        position += count
        return value
    }
}
