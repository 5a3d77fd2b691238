import Engine
import XCTest

@testable import ErlangTransport

/// Frames of a connected link: control messages in, signals answered, frames out.
final class DistributionMessageTests: XCTestCase {
    /// `term_to_binary({6, Pid, '', brain}, [{minor_version, 2}])` in `erl -name client@127.0.0.1`
    /// (OTP 25.2), `Pid` being `<0.85.0>` of creation 0x6b06fa57: a REG_SEND control message.
    static let regSendControl: [UInt8] = [
        131, 104, 4, 97, 6, 88, 119, 16, 99, 108, 105, 101, 110, 116, 64, 49, 50, 55, 46, 48, 46, 48, 46, 49,
        0, 0, 0, 85, 0, 0, 0, 0, 107, 6, 250, 87, 119, 0, 119, 5, 98, 114, 97, 105, 110,
    ]
    /// `term_to_binary({s, "k", <<"v">>}, [{minor_version, 2}])` in the same node.
    static let setMessage: [UInt8] = [131, 104, 3, 119, 1, 115, 107, 0, 1, 107, 109, 0, 0, 0, 1, 118]
    static let client = Pid(node: "client@127.0.0.1", id: 85, serial: 0, creation: 0x6b06_fa57)

    private func decode(_ bytes: [UInt8], limits: TermLimits = .default) throws -> DistributionMessage {
        try bytes.withUnsafeBytes { try DistributionMessage.decode($0, limits: limits) }
    }

    func testRegisteredSendFromErlDecodesToControlAndMessage() throws {
        let message = try decode([112] + Self.regSendControl + Self.setMessage)
        XCTAssertEqual(message.control, .registeredSend(from: Self.client, to: "brain"))
        XCTAssertEqual(try message.payload?.get(), .tuple([.atom("s"), .string([107]), .binary([118])]))
    }

    func testFrameWithoutThePassThroughByteIsMalformed() {
        XCTAssertThrowsError(try decode(Self.regSendControl + Self.setMessage)) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .malformedFrame)
        }
        XCTAssertThrowsError(try decode([])) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .malformedFrame)
        }
    }

    func testControlThatIsNotAControlTupleIsMalformed() {
        let cases: [Term] = [
            .atom("hello"), .tuple([]), .tuple([.atom("send")]), .tuple([.integer(1), .atom("x"), .atom("y")]),
            .tuple([.integer(6), .atom("notapid"), .atom(""), .atom("brain")]), .tuple([.integer(-1)]),
        ]
        for control in cases {
            XCTAssertThrowsError(try decode([112] + ExternalTermFormat.encode(control)), control.printed) { error in
                XCTAssertEqual((error as? ErlangTransportError)?.code, .malformedFrame)
            }
        }
        // Bytes that are no term at all.
        XCTAssertThrowsError(try decode([112, 131, 255, 1])) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .malformedFrame)
        }
    }

    func testMalformedMessageKeepsTheFrameButNotTheMessage() throws {
        // A well-formed control, then a message that is cut short.
        let message = try decode([112] + Self.regSendControl + [131, 104, 3, 119])
        XCTAssertEqual(message.control, .registeredSend(from: Self.client, to: "brain"))
        guard case .failure(let error)? = message.payload else { return XCTFail("expected a failed payload") }
        XCTAssertEqual(error.code, .truncated)
        // A message followed by stray bytes.
        let trailing = try decode([112] + Self.regSendControl + Self.setMessage + [0])
        guard case .failure(let trailingError)? = trailing.payload else { return XCTFail("expected a failed payload") }
        XCTAssertEqual(trailingError.code, .trailingBytes)
    }

    func testMessageBeyondTheTermLimitsIsRefusedAsAMessage() throws {
        let deep = (0..<10).reduce(Term.atom("x")) { inner, _ in .tuple([inner]) }
        let limits = TermLimits(maxDepth: 5, maxElements: 1000, maxBytes: 1000)
        let message = try decode([112] + Self.regSendControl + ExternalTermFormat.encode(deep), limits: limits)
        guard case .failure(let error)? = message.payload else { return XCTFail("expected a failed payload") }
        XCTAssertEqual(error.code, .depthLimit)
    }

    func testSignalWithoutPayloadFollowedByBytesIsMalformed() {
        let link = ExternalTermFormat.encode(.tuple([.integer(1), .pid(Self.client), .pid(Self.ours)]))
        XCTAssertNoThrow(try decode([112] + link))
        XCTAssertThrowsError(try decode([112] + link + Self.setMessage)) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .malformedFrame)
        }
    }

    func testUnknownOperationsAreToleratedWithTheirPayloads() throws {
        // GROUP_LEADER has no payload; PAYLOAD_EXIT (24) has one.
        let groupLeader = try decode([112] + ExternalTermFormat.encode(.tuple([.integer(7), .pid(Self.client), .pid(Self.ours)])))
        XCTAssertEqual(groupLeader.control, .other(operation: 7))
        XCTAssertNil(groupLeader.payload)
        let payloadExit = try decode(
            [112] + ExternalTermFormat.encode(.tuple([.integer(24), .pid(Self.client), .pid(Self.ours)]))
                + ExternalTermFormat.encode(.atom("normal")))
        XCTAssertEqual(payloadExit.control, .other(operation: 24))
        XCTAssertEqual(try payloadExit.payload?.get(), .atom("normal"))
    }

    // MARK: Outgoing frames

    func testSendFrameBytes() {
        let to = Pid(node: "client@127.0.0.1", id: 85, serial: 0, creation: 0)
        // Checked with erl: the control decodes to {2,'',<0.85.0>} and the message to ok.
        let expected: [UInt8] =
            [0, 0, 0, 44, 112, 131, 104, 3, 97, 2, 119, 0, 88, 119, 16] + Array("client@127.0.0.1".utf8)
            + [0, 0, 0, 85, 0, 0, 0, 0, 0, 0, 0, 0, 131, 119, 2, UInt8(ascii: "o"), UInt8(ascii: "k")]
        XCTAssertEqual(OutgoingFrame.send(to: to, message: .atom("ok")), expected)
    }

    func testTickIsAnEmptyFrame() {
        XCTAssertEqual(OutgoingFrame.tick, [0, 0, 0, 0])
    }

    // MARK: Signals

    static let ours = Pid(node: "brain@127.0.0.1", id: 1, serial: 0, creation: 5)
    private let policy = SignalPolicy(servedNames: ["brain", "net_kernel"])

    func testRegisteredSendToAServedNameIsDeliveredAndOthersDropped() {
        XCTAssertEqual(
            policy.action(for: .registeredSend(from: Self.client, to: "brain")), .deliver(to: "brain", from: Self.client))
        XCTAssertEqual(policy.action(for: .registeredSend(from: Self.client, to: "global_name_server")), .ignore)
        XCTAssertEqual(policy.action(for: .send(to: .pid(Self.ours))), .ignore)
    }

    func testLinkToOurPidIsAnsweredWithExitNoproc() throws {
        let action = policy.action(for: .link(from: Self.client, to: Self.ours))
        guard case .answer(let frame) = action else { return XCTFail("expected an answer") }
        let answered = try decodeFrame(frame)
        XCTAssertEqual(answered.control, .other(operation: 3))
        XCTAssertEqual(
            try ExternalTermFormat.decodePrefix(Array(frame[5...])).term,
            .tuple([.integer(3), .pid(Self.ours), .pid(Self.client), .atom("noproc")]))
    }

    func testMonitorOfAServedNameIsAcceptedAndOfAnythingElseAnsweredNoproc() throws {
        let reference = Term.reference(Reference(node: "client@127.0.0.1", creation: 1, ids: [1, 2, 3]))
        XCTAssertEqual(policy.action(for: .monitor(from: Self.client, target: .atom("brain"), reference: reference)), .ignore)
        for target in [Term.atom("other"), .pid(Self.ours)] {
            guard case .answer(let frame) = policy.action(for: .monitor(from: Self.client, target: target, reference: reference))
            else { return XCTFail("expected an answer for \(target)") }
            XCTAssertEqual(
                try ExternalTermFormat.decodePrefix(Array(frame[5...])).term,
                .tuple([.integer(21), target, .pid(Self.client), reference, .atom("noproc")]))
        }
    }

    func testUnlinkIDIsAcknowledged() throws {
        guard case .answer(let frame) = policy.action(for: .unlinkID(id: .integer(42), from: Self.client, to: Self.ours))
        else { return XCTFail("expected an answer") }
        XCTAssertEqual(
            try ExternalTermFormat.decodePrefix(Array(frame[5...])).term,
            .tuple([.integer(36), .integer(42), .pid(Self.ours), .pid(Self.client)]))
    }

    func testParsedSignalsFromTheirTuples() throws {
        let reference = Term.reference(Reference(node: "client@127.0.0.1", creation: 1, ids: [1, 2, 3]))
        XCTAssertEqual(
            try ControlMessage.parse(.tuple([.integer(19), .pid(Self.client), .atom("brain"), reference])),
            .monitor(from: Self.client, target: .atom("brain"), reference: reference))
        XCTAssertEqual(
            try ControlMessage.parse(.tuple([.integer(35), .integer(9), .pid(Self.client), .pid(Self.ours)])),
            .unlinkID(id: .integer(9), from: Self.client, to: Self.ours))
        XCTAssertEqual(
            try ControlMessage.parse(.tuple([.integer(16), .pid(Self.client), .atom(""), .atom("brain"), .atom("token")])),
            .registeredSend(from: Self.client, to: "brain"))
        XCTAssertEqual(
            try ControlMessage.parse(.tuple([.integer(12), .atom(""), .pid(Self.ours), .atom("token")])),
            .send(to: .pid(Self.ours)))
        XCTAssertTrue(try ControlMessage.parse(.tuple([.integer(33), .pid(Self.client), reference])).hasPayload)
    }

    func testNetKernelPingIsAnsweredYes() {
        let tag = Term.reference(Reference(node: "client@127.0.0.1", creation: 1, ids: [4, 5, 6]))
        let call = Term.tuple([
            .atom("$gen_call"), .tuple([.pid(Self.client), tag]), .tuple([.atom("is_auth"), .atom("client@127.0.0.1")]),
        ])
        let reply = SignalPolicy.netKernelReply(to: call)
        XCTAssertEqual(reply?.to, Self.client)
        XCTAssertEqual(reply?.message, .tuple([tag, .atom("yes")]))
        XCTAssertNil(SignalPolicy.netKernelReply(to: .tuple([.atom("$gen_call"), .atom("x"), .atom("y")])))
    }

    private func decodeFrame(_ frame: [UInt8]) throws -> DistributionMessage {
        XCTAssertEqual(Array(frame[0..<4]), bigEndian(UInt64(frame.count - 4), 4))
        return try decode(Array(frame[4...]))
    }
}
