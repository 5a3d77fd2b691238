import NIOCore
import NIOPosix

/// A raw TCP client for live tests: writes bytes exactly as given, reads `\r\n` lines.
struct LineTestClient {
    struct Timeout: Error {}

    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let channel: any Channel
    private var pending = ByteBuffer()
    private var ended = false

    /// Connects to `port` on loopback and runs `body` with a client, closing it afterwards.
    static func with<Result: Sendable>(
        port: Int, _ body: (inout LineTestClient) async throws -> Result
    ) async throws -> Result {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await connection.executeThenClose { inbound, outbound in
            var client = LineTestClient(
                iterator: inbound.makeAsyncIterator(), outbound: outbound, channel: connection.channel)
            return try await body(&client)
        }
    }

    private init(
        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel
    ) {
        self.iterator = iterator
        self.outbound = outbound
        self.channel = channel
    }

    /// Sends `text` in one write.
    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Sends `bytes` in one write.
    func send(bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Closes the client's sending side, as `nc -N` does after its input.
    func finishSending() async throws {
        try await channel.close(mode: .output)
    }

    /// The next reply line without its `\r\n`, or `nil` once the server has closed. Fails a
    /// line that is not ended by `\r\n`.
    mutating func readLine() async throws -> String? {
        while true {
            if let index = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = index - pending.readerIndex
                precondition(
                    length > 0 && pending.getInteger(at: index - 1, as: UInt8.self) == UInt8(ascii: "\r"),
                    "reply not ended by CRLF")
                let line = pending.readString(length: length - 1)!
                pending.moveReaderIndex(forwardBy: 2)
                return line
            }
            guard !ended, var chunk = try await iterator.next() else {
                ended = true
                precondition(pending.readableBytes == 0, "unfinished reply at close")
                return nil
            }
            pending.writeBuffer(&chunk)
        }
    }

    /// The next `count` reply lines.
    mutating func readLines(_ count: Int) async throws -> [String] {
        var lines: [String] = []
        for _ in 0..<count {
            guard let line = try await readLine() else { break }
            lines.append(line)
        }
        return lines
    }
}

/// Runs `body`, failing with ``LineTestClient/Timeout`` if it takes longer than `seconds`,
/// so that a broken server fails a test instead of hanging it.
func withTimeout<Result: Sendable>(
    seconds: Double = 10, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw LineTestClient.Timeout()
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}
