import Engine
import Logging
import NIOCore
import NIOEmbedded
import XCTest

@testable import LineProtocol

/// The connection handler on an embedded channel: commands the store answers at once.
/// (Commands that wait are covered by the live tests in LineTransportTests.)
final class LineConnectionHandlerTests: XCTestCase {
    private func connection(store: FakeStore = FakeStore(), secret: String? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let shared = LineConnectionHandler.Shared(
            store: store, counters: CounterSet(names: LineCommandName.allCases.map(\.text)),
            secret: secret.map { Array($0.utf8) }, logger: Logger(label: "test"), requestShutdown: {})
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maxLineBytes: 64)))
        try channel.pipeline.syncOperations.addHandler(LineConnectionHandler(shared: shared, allocator: channel.allocator))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    private func written(_ channel: EmbeddedChannel) throws -> [String] {
        var writes: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            writes.append(String(buffer: buffer))
        }
        return writes
    }

    func testTheCommandsOfOneReadAreAnsweredInOrderInOneWrite() throws {
        let channel = try connection()
        try channel.writeInbound(ByteBuffer(string: "set a 1\nget a\r\nget b\nbogus\nget"))
        XCTAssertEqual(try written(channel), ["1\r\n-1\r\nnull\r\nerror unknown_command: bogus\r\n"])
        try channel.writeInbound(ByteBuffer(string: " a\n"))
        XCTAssertEqual(try written(channel), ["-1\r\n"])
        XCTAssertNoThrow(try channel.finish())
    }

    func testQuitAndALineTooLongCloseAfterTheRepliesBeforeThem() throws {
        let channel = try connection()
        try channel.writeInbound(ByteBuffer(string: "get a\nquit\nset a never\n"))
        XCTAssertEqual(try written(channel).joined(), "null\r\n")
        XCTAssertFalse(channel.isActive)

        let long = try connection()
        try long.writeInbound(ByteBuffer(string: "get a\n" + String(repeating: "x", count: 100)))
        XCTAssertEqual(try written(long).joined(), "null\r\nerror line_too_long: limit is 64 bytes\r\n")
        XCTAssertFalse(long.isActive)
    }

    func testEndOfInputAnswersWhatWasReadThenCloses() throws {
        let channel = try connection()
        try channel.writeInbound(ByteBuffer(string: "set k v\nget k\n"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(try written(channel).joined(), "1\r\n-v\r\n")
        XCTAssertFalse(channel.isActive)
    }

    func testAuthIsPerConnection() throws {
        let channel = try connection(secret: "s")
        try channel.writeInbound(ByteBuffer(string: "get k\nauth s\nget k\n"))
        XCTAssertEqual(try written(channel).joined(), "error auth_required: send auth <secret> first\r\n1\r\nnull\r\n")
        XCTAssertNoThrow(try channel.finish())
    }
}
