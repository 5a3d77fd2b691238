import XCTest

@testable import ErlangTransport

/// The handshake as the acceptor, step by step, with the bytes real peers send.
final class DistributionHandshakeTests: XCTestCase {
    /// The name message `erl -name client@127.0.0.1` (OTP 25.2) sends, captured from the wire.
    static let otp25Name = hex("4e0000000d07df7fbd6b06fa560010636c69656e74403132372e302e302e31")
    /// The name message of an erl_interface 5.3 C node named `peb_client_9@vm`, captured.
    static let erlInterfaceName = hex("4e0000000407074f9c000000e7000f7065625f636c69656e745f3940766d")

    private let local = "brain@127.0.0.1"
    private let ourFlags = DistributionFlags.advertised(hidden: false)

    private func handshake(cookie: String = "C", challenge: UInt32 = 12345) -> DistributionHandshake {
        DistributionHandshake(
            configuration: .init(localNode: local, creation: 0x0102_0304, cookie: Array(cookie.utf8)),
            challenge: challenge)
    }

    /// The challenge we must send: 'N', our flags, the challenge, our creation, our name.
    private func expectedChallenge(challenge: UInt32) -> [UInt8] {
        var body: [UInt8] = [UInt8(ascii: "N")]
        body += bigEndian(ourFlags.rawValue, 8) + bigEndian(UInt64(challenge), 4) + [1, 2, 3, 4]
        body += bigEndian(UInt64(local.utf8.count), 2) + Array(local.utf8)
        return bigEndian(UInt64(body.count), 2) + body
    }

    private func reply(peerChallenge: UInt32, digestHex: String) -> [UInt8] {
        [UInt8(ascii: "r")] + bigEndian(UInt64(peerChallenge), 4) + Self.hex(digestHex)
    }

    // MARK: Version 6

    func testOTP25PeerIsAcceptedStepByStep() throws {
        var machine = handshake()
        XCTAssertEqual(
            machine.receive(Self.otp25Name),
            [.send([0, 3, UInt8(ascii: "s"), UInt8(ascii: "o"), UInt8(ascii: "k")]), .send(expectedChallenge(challenge: 12345))])
        XCTAssertFalse(machine.isFinished)

        // MD5("C" ++ "12345") = 868031028d3aaa580a176b6146f3eb5a; the peer challenges with 4294967295,
        // and MD5("C" ++ "4294967295") = 57e5aa134c1b0c99ccbe407ef4b372d4.
        let directives = machine.receive(reply(peerChallenge: 4_294_967_295, digestHex: "868031028d3aaa580a176b6146f3eb5a"))
        let peerFlags = DistributionFlags(rawValue: 0xd_07df_7fbd)
        XCTAssertEqual(
            directives,
            [
                .send([0, 17, UInt8(ascii: "a")] + Self.hex("57e5aa134c1b0c99ccbe407ef4b372d4")),
                .established(.init(
                    name: "client@127.0.0.1", flags: peerFlags, negotiatedFlags: peerFlags.intersection(ourFlags),
                    creation: 0x6b06_fa56, version: 6)),
            ])
        XCTAssertTrue(machine.isFinished)
        guard case .established(let peer) = directives.last else { return XCTFail("not established") }
        XCTAssertFalse(peer.isHidden)
        XCTAssertFalse(peer.negotiatedFlags.contains(.distHeaderAtomCache))
        XCTAssertFalse(peer.negotiatedFlags.contains(.fragments))
    }

    func testErlInterfaceCNodeIsAcceptedAsHidden() {
        var machine = handshake(cookie: "secret", challenge: 3_000_000_000)
        XCTAssertEqual(machine.receive(Self.erlInterfaceName).count, 2)
        // MD5("secret" ++ "3000000000") and MD5("secret" ++ "7").
        let directives = machine.receive(reply(peerChallenge: 7, digestHex: "8d59c529b94478021bf57d2723731099"))
        XCTAssertEqual(directives.first, .send([0, 17, UInt8(ascii: "a")] + Self.hex("fcfcda07b8fb7dff788af166b6a78f3e")))
        guard case .established(let peer) = directives.last else { return XCTFail("not established: \(directives)") }
        XCTAssertEqual(peer.name, "peb_client_9@vm")
        XCTAssertTrue(peer.isHidden)
        XCTAssertEqual(peer.creation, 0xe7)
    }

    func testTrailingBytesAfterTheNameAreIgnored() {
        var machine = handshake()
        let directives = machine.receive(Self.otp25Name + [1, 2, 3])
        XCTAssertEqual(directives.first, .send(DistributionHandshake.status("ok")))
        XCTAssertEqual(directives.count, 2)
    }

    // MARK: Version 5

    func testVersion5NameThenComplementThenReply() {
        var machine = handshake()
        let name = Array("old@127.0.0.1".utf8)
        // 'n', version 5, the low 32 bits of the OTP 25 flags, the name.
        let message = [UInt8(ascii: "n"), 0, 5] + bigEndian(0x07df_7fbd, 4) + name
        XCTAssertEqual(machine.receive(message), [.send(DistributionHandshake.status("ok")), .send(expectedChallenge(challenge: 12345))])
        // The complement brings the high flag bits and the creation; nothing is answered.
        XCTAssertEqual(machine.receive([UInt8(ascii: "c")] + bigEndian(0xd, 4) + bigEndian(0x0a0b_0c0d, 4)), [])
        let directives = machine.receive(reply(peerChallenge: 4_294_967_295, digestHex: "868031028d3aaa580a176b6146f3eb5a"))
        guard case .established(let peer) = directives.last else { return XCTFail("not established: \(directives)") }
        XCTAssertEqual(peer.name, "old@127.0.0.1")
        XCTAssertEqual(peer.flags, DistributionFlags(rawValue: 0xd_07df_7fbd))
        XCTAssertEqual(peer.creation, 0x0a0b_0c0d)
        XCTAssertEqual(peer.version, 5)
    }

    func testVersion5ReplyWithoutComplementIsMalformed() {
        var machine = handshake()
        _ = machine.receive([UInt8(ascii: "n"), 0, 5] + bigEndian(0x07df_7fbd, 4) + Array("old@h".utf8))
        let directives = machine.receive(reply(peerChallenge: 1, digestHex: "868031028d3aaa580a176b6146f3eb5a"))
        XCTAssertEqual(directives.count, 1)
        guard case .close(let error) = directives.first else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeMalformed)
        XCTAssertTrue(machine.isFinished)
    }

    func testVersionOtherThan5InOldNameIsRefused() {
        var machine = handshake()
        let directives = machine.receive([UInt8(ascii: "n"), 0, 4] + bigEndian(0x07df_7fbd, 4) + Array("old@h".utf8))
        XCTAssertEqual(directives.first, .send(DistributionHandshake.status("not_allowed")))
        guard case .close(let error) = directives.last else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeNotAllowed)
    }

    // MARK: Refusals

    func testWrongDigestIsRejectedWithoutAnAck() {
        var machine = handshake()
        _ = machine.receive(Self.otp25Name)
        // The digest of the right challenge with the cookie "D".
        let directives = machine.receive(reply(peerChallenge: 1, digestHex: "00112233445566778899aabbccddeeff"))
        XCTAssertEqual(
            directives,
            [.close(ErlangTransportError(.wrongCookie, "client@127.0.0.1 answered the challenge with another cookie"))])
        XCTAssertTrue(machine.isFinished)
        // Nothing more is accepted after a refusal.
        guard case .close(let error) = machine.receive(Self.otp25Name).first else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeMalformed)
    }

    func testDigestOfAnotherCookieIsRejected() {
        var machine = handshake(cookie: "D")
        _ = machine.receive(Self.otp25Name)
        guard case .close(let error) = machine.receive(reply(peerChallenge: 1, digestHex: "868031028d3aaa580a176b6146f3eb5a")).first
        else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .wrongCookie)
    }

    func testMissingMandatoryFlagsAreNotAllowed() {
        var machine = handshake()
        // OTP 25's flags without BIG_CREATION (0x40000) and MAP_TAG (0x20000).
        var message = Self.otp25Name
        message.replaceSubrange(1..<9, with: bigEndian(0xd_07df_7fbd & ~0x60000, 8))
        let directives = machine.receive(message)
        XCTAssertEqual(directives.first, .send([0, 12, UInt8(ascii: "s")] + Array("not_allowed".utf8)))
        guard case .close(let error) = directives.last else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeNotAllowed)
        XCTAssertTrue(error.message.contains("0x60000"), error.message)
        XCTAssertEqual(directives.count, 2)
    }

    func testPeerAskingForANameIsNotAllowed() {
        var machine = handshake()
        var message = Self.otp25Name
        message.replaceSubrange(1..<9, with: bigEndian(0xd_07df_7fbd | DistributionFlags.nameMe.rawValue, 8))
        XCTAssertEqual(machine.receive(message).first, .send(DistributionHandshake.status("not_allowed")))
    }

    func testNameLongerThanTheLimitIsRefusedBeforeItIsRead() {
        var machine = DistributionHandshake(
            configuration: .init(localNode: local, creation: 1, cookie: [67], maxNameBytes: 20), challenge: 1)
        // Declares a 21-byte name but carries none of it: the length alone refuses it.
        let message = [UInt8(ascii: "N")] + bigEndian(0xd_07df_7fbd, 8) + bigEndian(1, 4) + bigEndian(21, 2)
        let directives = machine.receive(message)
        XCTAssertEqual(directives.first, .send(DistributionHandshake.status("not_allowed")))
        guard case .close(let error) = directives.last else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeNotAllowed)
        XCTAssertTrue(error.message.contains("21 bytes"), error.message)
    }

    func testNamesThatAreNotNodeNamesAreRefused() {
        for name in ["client", "@host", "client@", "a\u{1}b@host"] {
            var machine = handshake()
            let bytes = Array(name.utf8)
            let message = [UInt8(ascii: "N")] + bigEndian(0xd_07df_7fbd, 8) + bigEndian(1, 4)
                + bigEndian(UInt64(bytes.count), 2) + bytes
            let directives = machine.receive(message)
            XCTAssertEqual(directives.first, .send(DistributionHandshake.status("not_allowed")), name)
        }
        var machine = handshake()
        let invalidUTF8: [UInt8] = [0xff, UInt8(ascii: "@"), UInt8(ascii: "h")]
        let message = [UInt8(ascii: "N")] + bigEndian(0xd_07df_7fbd, 8) + bigEndian(1, 4) + bigEndian(3, 2) + invalidUTF8
        XCTAssertEqual(machine.receive(message).first, .send(DistributionHandshake.status("not_allowed")))
    }

    func testMalformedMessagesCloseWithoutAnswer() {
        let cases: [[UInt8]] = [
            [],  // empty
            [UInt8(ascii: "N"), 0, 0, 0],  // too short
            [UInt8(ascii: "N")] + bigEndian(0xd_07df_7fbd, 8) + bigEndian(1, 4) + bigEndian(16, 2) + [1, 2],  // name cut short
            [UInt8(ascii: "x"), 1, 2, 3],  // unknown tag
            [UInt8(ascii: "r")] + bigEndian(1, 4) + Array(repeating: 0, count: 16),  // a reply before the name
        ]
        for message in cases {
            var machine = handshake()
            let directives = machine.receive(message)
            XCTAssertEqual(directives.count, 1, "\(message)")
            guard case .close(let error) = directives.first else { return XCTFail("expected a close for \(message)") }
            XCTAssertEqual(error.code, .handshakeMalformed)
            XCTAssertTrue(machine.isFinished)
        }
    }

    func testReplyOfTheWrongLengthIsMalformed() {
        var machine = handshake()
        _ = machine.receive(Self.otp25Name)
        let short = [UInt8(ascii: "r")] + bigEndian(1, 4) + Array(repeating: 0, count: 15)
        guard case .close(let error) = machine.receive(short).first else { return XCTFail("expected a close") }
        XCTAssertEqual(error.code, .handshakeMalformed)
    }

    // MARK: Pieces

    func testDigestIsMD5OfCookieAndDecimalChallenge() {
        XCTAssertEqual(DistributionHandshake.digest(challenge: 12345, cookie: Array("C".utf8)), Self.hex("868031028d3aaa580a176b6146f3eb5a"))
        XCTAssertEqual(
            DistributionHandshake.digest(challenge: UInt32.max, cookie: Array("C".utf8)), Self.hex("57e5aa134c1b0c99ccbe407ef4b372d4"))
    }

    func testAdvertisedFlagsAreTheReferenceSetWithMonitorsAndSmallAtoms() {
        XCTAssertEqual(DistributionFlags.mandatory25.rawValue, 0x107_0F94)
        XCTAssertEqual(DistributionFlags.mandatory26.rawValue, 0x4_0307_0F94)
        XCTAssertEqual(DistributionFlags.advertised(hidden: true).rawValue, 0x4_0707_4FBC)
        XCTAssertEqual(DistributionFlags.advertised(hidden: false).rawValue, 0x4_0707_4FBD)
        XCTAssertEqual(DistributionFlags.advertised(hidden: false).description, "0x407074fbd")
    }

    // MARK: Helpers

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

/// `value` as `count` big-endian bytes.
func bigEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}
