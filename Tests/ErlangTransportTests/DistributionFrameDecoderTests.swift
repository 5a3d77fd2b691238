import NIOCore
import NIOEmbedded
import NIOTestUtils
import XCTest

@testable import ErlangTransport

final class DistributionFrameDecoderTests: XCTestCase {
    private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: bytes)
    }

    private let nameMessage: [UInt8] = [0, 4, UInt8(ascii: "N"), 1, 2, 3]
    private let complement: [UInt8] = [0, 2, UInt8(ascii: "c"), 9]
    private let reply: [UInt8] = [0, 3, UInt8(ascii: "r"), 7, 7]

    func testVerifierHandshakeMessagesOneByteAtATimeAndAllAtOnce() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (buffer(nameMessage), [.handshake(buffer([UInt8(ascii: "N"), 1, 2, 3]))]),
                (buffer(complement), [.handshake(buffer([UInt8(ascii: "c"), 9]))]),
                (buffer(nameMessage + complement), [
                    .handshake(buffer([UInt8(ascii: "N"), 1, 2, 3])), .handshake(buffer([UInt8(ascii: "c"), 9])),
                ]),
            ],
            decoderFactory: { DistributionFrameDecoder(maxFrameBytes: 16) })
    }

    func testVerifierConnectedFramesOneByteAtATimeAndAllAtOnce() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (buffer([0, 0, 0, 0]), [.tick]),
                (buffer([0, 0, 0, 3, 112, 131, 106]), [.data(buffer([112, 131, 106]))]),
                (buffer([0, 0, 0, 16] + Array(repeating: 7, count: 16)), [.data(buffer(Array(repeating: 7, count: 16)))]),
                (buffer([0, 0, 0, 0, 0, 0, 0, 1, 112, 0, 0, 0, 0]), [.tick, .data(buffer([112])), .tick]),
            ],
            decoderFactory: { DistributionFrameDecoder(maxFrameBytes: 16, connected: true) })
    }

    func testReplySwitchesToFourByteFramesWhateverTheReadsAre() throws {
        // The same bytes in one read and one byte per read.
        let wire = nameMessage + reply + [0, 0, 0, 0] + [0, 0, 0, 3, 112, 131, 106]
        let expected: [DistributionFrame] = [
            .handshake(buffer([UInt8(ascii: "N"), 1, 2, 3])), .handshake(buffer([UInt8(ascii: "r"), 7, 7])), .tick,
            .data(buffer([112, 131, 106])),
        ]
        for chunk in [wire.count, 1] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 16)))
            var start = 0
            while start < wire.count {
                try channel.writeInbound(buffer(Array(wire[start..<min(start + chunk, wire.count)])))
                start += chunk
            }
            var frames: [DistributionFrame] = []
            while let frame = try channel.readInbound(as: DistributionFrame.self) { frames.append(frame) }
            XCTAssertEqual(frames, expected, "reads of \(chunk) bytes")
            XCTAssertTrue(try channel.finish().isClean)
        }
    }

    func testFramedDataRightBehindTheReplyInOneReadIsNotLost() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 64)))
        try channel.writeInbound(buffer(nameMessage))
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .handshake(buffer([UInt8(ascii: "N"), 1, 2, 3])))
        // The reply and two frames arrive together, the second one cut in the middle.
        try channel.writeInbound(buffer(reply + [0, 0, 0, 2, 112, 1] + [0, 0, 0, 2, 112]))
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .handshake(buffer([UInt8(ascii: "r"), 7, 7])))
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .data(buffer([112, 1])))
        XCTAssertNil(try channel.readInbound(as: DistributionFrame.self))
        try channel.writeInbound(buffer([2]))
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .data(buffer([112, 2])))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testFrameOverTheLimitFailsOnItsLengthAlone() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 8)))
        try channel.writeInbound(buffer(reply))
        _ = try channel.readInbound(as: DistributionFrame.self)
        // Only the length of a 9-byte frame: no byte of its body is needed to refuse it.
        XCTAssertThrowsError(try channel.writeInbound(buffer([0, 0, 0, 9]))) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .frameTooLarge)
        }
        _ = try? channel.finish()
    }

    func testFrameOfExactlyTheLimitIsAccepted() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 3)))
        try channel.writeInbound(buffer(reply + [0, 0, 0, 3, 112, 131, 106]))
        _ = try channel.readInbound(as: DistributionFrame.self)
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .data(buffer([112, 131, 106])))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testHandshakeMessageOverItsLimitFails() throws {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 64, maxHandshakeBytes: 100)))
        XCTAssertThrowsError(try channel.writeInbound(buffer([0, 101]))) { error in
            XCTAssertEqual((error as? ErlangTransportError)?.code, .frameTooLarge)
        }
        _ = try? channel.finish()
    }

    func testBeforeTheReplyFourByteLengthsAreNotUnderstood() throws {
        // A peer that skips the handshake and sends a connected frame: its first two bytes read
        // as a 2-byte length of 0, an empty handshake message, which the handshake refuses.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: 64)))
        try channel.writeInbound(buffer([0, 0, 0, 3, 112, 131, 106]))
        XCTAssertEqual(try channel.readInbound(as: DistributionFrame.self), .handshake(buffer([])))
        _ = try? channel.finish()
    }
}
