import Engine
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import XCTest

@testable import ErlangTransport

/// Keeps the log lines of a test.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            logs.append("\(event.level) \(event.message)")
        }
    }

    var logger: Logger { Logger(label: "erlang-test") { _ in Handler(logs: self) } }
}

/// A transport running under a service group on an ephemeral port, registered with epmd
/// under a name of its own.
struct RunningNode: Sendable {
    let transport: ErlangTransport
    let port: Int
    let store: FakeStore
    let metrics: Metrics
    let logs: CapturedLogs
    let group: ServiceGroup

    var nodeName: String { transport.configuration.nodeName }

    /// The `brain_commands_total{transport="erlang",cmd}` value of `command`.
    func count(_ command: ErlangCommandName) -> Int {
        let line = "brain_commands_total{transport=\"erlang\",cmd=\"\(command.text)\"} "
        let rendered = metrics.render(StoreInfo())
        guard let found = rendered.split(separator: "\n").first(where: { $0.hasPrefix(line) }) else { return -1 }
        return Int(found.dropFirst(line.count)) ?? -1
    }
}

/// A unique node name for one test, so that tests never collide in epmd.
func uniqueNodeName(_ prefix: String = "braintest") -> String {
    "\(prefix)\(UInt32.random(in: 0...UInt32.max))@127.0.0.1"
}

/// Runs `body` against a transport serving `store`, then shuts it down gracefully and waits
/// for it to stop. Fails the test if anything takes longer than `seconds`.
func withNode(
    _ configure: (inout ErlangTransportConfiguration) -> Void = { _ in },
    store: FakeStore = FakeStore(), seconds: Double = 30,
    _ body: @escaping @Sendable (RunningNode) async throws -> Void
) async throws {
    var configuration = ErlangTransportConfiguration(nodeName: uniqueNodeName(), cookie: "C")
    configure(&configuration)
    let logs = CapturedLogs()
    let metrics = Metrics()
    let transport = ErlangTransport(configuration: configuration, store: store, metrics: metrics, logger: logs.logger)
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [transport], logger: logs.logger))
    try await withTimeout(seconds: seconds) {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await transport.boundPort()
            let node = RunningNode(
                transport: transport, port: port, store: store, metrics: metrics, logs: logs, group: group)
            do {
                try await body(node)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var description: String
}

/// Runs `body`, failing with ``TimeoutError`` after `seconds`.
func withTimeout(seconds: Double, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw TimeoutError(description: "timed out after \(seconds) s")
        }
        try await group.next()
        group.cancelAll()
    }
}

/// A distribution peer written by hand: connects, performs the initiator's side of the
/// handshake byte by byte, then reads and writes frames.
struct RawPeer {
    static let otp25Flags: UInt64 = 0xd_07df_7fbd

    let name: String
    private var frames: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let channel: any Channel
    private var pending: [UInt8] = []
    /// Ticks received so far.
    private(set) var ticks = 0

    /// A pid of this peer, for replies.
    var pid: Pid { Pid(node: Atom(name), id: 85, serial: 0, creation: 7) }

    /// Connects to `port` and runs `body` with the peer; the connection closes after it.
    static func connect<T: Sendable>(
        port: Int, name: String = "tester@127.0.0.1", _ body: (inout RawPeer) async throws -> T
    ) async throws -> T {
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await client.executeThenClose { inbound, outbound in
            var peer = RawPeer(name: name, frames: inbound.makeAsyncIterator(), outbound: outbound, channel: client.channel)
            return try await body(&peer)
        }
    }

    private init(
        name: String, frames: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, channel: any Channel
    ) {
        self.name = name
        self.frames = frames
        self.outbound = outbound
        self.channel = channel
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Reads exactly `count` bytes; nil when the connection closes first. Gives up (closing
    /// the connection) after `seconds`.
    mutating func read(_ count: Int, seconds: Double = 10) async throws -> [UInt8]? {
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        while pending.count < count {
            guard let buffer = try? await frames.next() else { return nil }
            pending.append(contentsOf: buffer.readableBytesView)
        }
        defer { pending.removeFirst(count) }
        return Array(pending.prefix(count))
    }

    /// True when the server closes the connection within `seconds` (bytes it sends before
    /// are skipped).
    mutating func closedByServer(within seconds: Double) async -> Bool {
        await bytesUntilClosedByServer(within: seconds) != nil
    }

    /// The bytes the server sends before it closes the connection (those already read but not
    /// yet consumed included); nil when it has not closed it within `seconds`.
    mutating func bytesUntilClosedByServer(within seconds: Double) async -> [UInt8]? {
        let channel = self.channel
        let timedOut = Flag()
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            timedOut.set()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        var received = pending
        pending = []
        while let buffer = try? await frames.next() { received.append(contentsOf: buffer.readableBytesView) }
        return timedOut.isSet ? nil : received
    }

    /// Fails the test unless the server closes the connection within `seconds`.
    mutating func expectClosedByServer(within seconds: Double, file: StaticString = #filePath, line: UInt = #line) async {
        let closed = await closedByServer(within: seconds)
        XCTAssertTrue(closed, "the server did not close the connection within \(seconds) s", file: file, line: line)
    }

    /// Performs the handshake with the right cookie; throws if the server refuses it.
    mutating func shake() async throws {
        guard try await handshake() else { throw TimeoutError(description: "the server refused the handshake") }
    }

    /// Reads one handshake message (2-byte length).
    mutating func readHandshakeMessage() async throws -> [UInt8]? {
        guard let length = try await read(2) else { return nil }
        return try await read(Int(length[0]) << 8 | Int(length[1]))
    }

    /// Performs the handshake with `cookie`; returns the server's challenge message, or nil
    /// when the server closed the connection.
    mutating func handshake(cookie: String = "C", flags: UInt64 = otp25Flags) async throws -> Bool {
        let nameBytes = Array(name.utf8)
        let body = [UInt8(ascii: "N")] + bigEndian(flags, 8) + bigEndian(7, 4) + bigEndian(UInt64(nameBytes.count), 2) + nameBytes
        try await send(bigEndian(UInt64(body.count), 2) + body)
        guard let status = try await readHandshakeMessage(), status == Array("sok".utf8) else { return false }
        guard let challenge = try await readHandshakeMessage(), challenge.first == UInt8(ascii: "N") else { return false }
        let theirs = challenge[9..<13].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let ours: UInt32 = 4_000_000_000
        let digest = DistributionHandshake.digest(challenge: theirs, cookie: Array(cookie.utf8))
        let reply = [UInt8(ascii: "r")] + bigEndian(UInt64(ours), 4) + digest
        try await send(bigEndian(UInt64(reply.count), 2) + reply)
        guard let ack = try await readHandshakeMessage() else { return false }
        return ack == [UInt8(ascii: "a")] + DistributionHandshake.digest(challenge: ours, cookie: Array(cookie.utf8))
    }

    /// Sends `{Name, Node} ! message` from this peer's pid.
    func registeredSend(to registeredName: String = "brain", _ message: Term) async throws {
        let control = Term.tuple([.integer(6), .pid(pid), .atom(""), .atom(Atom(registeredName))])
        try await send(OutgoingFrame.frame(control: control, message: message))
    }

    /// Sends one control message without payload.
    func sendControl(_ control: Term) async throws {
        try await send(OutgoingFrame.frame(control: control, message: nil))
    }

    /// Reads the next frame that is not a tick, decoded; nil when the connection closes.
    mutating func readMessage(seconds: Double = 10) async throws -> DistributionMessage? {
        while true {
            guard let header = try await read(4, seconds: seconds) else { return nil }
            let length = header.reduce(0) { $0 << 8 | Int($1) }
            if length == 0 {
                ticks += 1
                continue
            }
            guard let body = try await read(length, seconds: seconds) else { return nil }
            return try body.withUnsafeBytes { try DistributionMessage.decode($0, limits: .default) }
        }
    }

    /// Reads the next message sent to one of this peer's processes: `(to, message)`.
    mutating func readSend(seconds: Double = 10) async throws -> (to: Term, message: Term)? {
        guard let message = try await readMessage(seconds: seconds) else { return nil }
        guard case .send(let to) = message.control, case .success(let term)? = message.payload else {
            XCTFail("expected a SEND, got \(message.control)")
            return nil
        }
        return (to, term)
    }
}

/// A flag set once, readable from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() {
        value.store(true, ordering: .relaxed)
    }

    var isSet: Bool { value.load(ordering: .relaxed) }
}
