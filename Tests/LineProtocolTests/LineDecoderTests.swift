import NIOCore
import NIOEmbedded
import NIOTestUtils
import XCTest

@testable import LineProtocol

final class LineDecoderTests: XCTestCase {
    private func line(_ text: String) -> LineFrame {
        .line(ByteBuffer(string: text))
    }

    func testVerifierOneByteAtATimeAndAllAtOnce() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                ("get k\n", [line("get k")]),
                ("set k v\r\n", [line("set k v")]),
                ("\n", [line("")]),
                ("\r\n", [line("")]),
                ("a\rb\n", [line("a\rb")]),
                ("x\r\r\n", [line("x\r")]),
                ("one\ntwo\r\nthree\n", [line("one"), line("two"), line("three")]),
                ("sixteen-bytes-ok\r\n", [line("sixteen-bytes-ok")]),
                ("sixteen-bytes-ok\n", [line("sixteen-bytes-ok")]),
            ],
            decoderFactory: { LineDecoder(maxLineBytes: 16) })
    }

    func testLongestAllowedLineEndingInCarriageReturnWaitsForItsNewline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLineBytes: 4)))
        try channel.writeInbound(ByteBuffer(string: "abcd\r"))
        XCTAssertNil(try channel.readInbound(as: LineFrame.self))
        try channel.writeInbound(ByteBuffer(string: "\n"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), line("abcd"))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testOverlongLineIsReportedBeforeItsEndAndTheRestIsDropped() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLineBytes: 4)))
        try channel.writeInbound(ByteBuffer(string: "ok\nabcd"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), line("ok"))
        XCTAssertNil(try channel.readInbound(as: LineFrame.self))
        // The fifth byte of the line is one too many: no need to wait for the newline.
        try channel.writeInbound(ByteBuffer(string: "e"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), .tooLong(limit: 4))
        // Everything after is discarded, complete lines included.
        try channel.writeInbound(ByteBuffer(string: "fgh\nget k\n"))
        XCTAssertNil(try channel.readInbound(as: LineFrame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testOverlongLineInOneReadWithItsNewline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLineBytes: 4)))
        try channel.writeInbound(ByteBuffer(string: "abcde\r\nget k\n"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), .tooLong(limit: 4))
        XCTAssertNil(try channel.readInbound(as: LineFrame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testCarriageReturnPastTheLimitThatIsNotATerminatorIsTooLong() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLineBytes: 4)))
        try channel.writeInbound(ByteBuffer(string: "abcd\rx"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), .tooLong(limit: 4))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testDecoderNeverHoldsMoreThanTheLimit() {
        var decoder = LineDecoder(maxLineBytes: 8)
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for _ in 0..<8 {
            buffer.writeString("x")
            XCTAssertNil(decoder.nextFrame(&buffer))
        }
        buffer.writeString("\r")
        XCTAssertNil(decoder.nextFrame(&buffer), "a trailing CR may still be a terminator")
        XCTAssertEqual(buffer.readableBytes, 9)
        buffer.writeString("x")
        XCTAssertEqual(decoder.nextFrame(&buffer), .tooLong(limit: 8))
        XCTAssertEqual(buffer.readableBytes, 0)
        buffer.writeString(String(repeating: "y", count: 40) + "\n")
        XCTAssertNil(decoder.nextFrame(&buffer))
        XCTAssertEqual(buffer.readableBytes, 0)
    }

    func testUnfinishedLastLineIsDroppedAtEndOfInput() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineDecoder(maxLineBytes: 64)))
        try channel.writeInbound(ByteBuffer(string: "get a\nget b"))
        XCTAssertEqual(try channel.readInbound(as: LineFrame.self), line("get a"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertNil(try channel.readInbound(as: LineFrame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }
}
