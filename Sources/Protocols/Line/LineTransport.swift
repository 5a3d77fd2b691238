import Engine
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The telnet-style line protocol (Brain2's commands) over TCP.
///
/// `run()` binds, logs `line protocol listening on <host>:<port>`, and serves every
/// connection in a task of its own that catches its own errors, so one bad client cannot take
/// the others down. Within a connection, commands run one after the other and replies go
/// out in order; the replies to the commands of one socket read leave with a single flush.
///
/// On graceful shutdown the transport stops accepting, stops reading from every connection,
/// answers the commands already received, closes the connections, and returns.
public final class LineTransport: Transport {
    /// The settings the transport was made with.
    public let configuration: LineTransportConfiguration

    private let store: any Store
    private let logger: Logger
    private let requestShutdown: @Sendable () -> Void
    private let counters: CounterSet
    private let secret: [UInt8]?
    private let eventLoopGroup: any EventLoopGroup
    private let activeConnections = Atomic<Int>(0)
    /// `brain_connections_closed_total{transport="line",reason}`, indexed by ``CloseReason``.
    private let closes: CounterSet
    private let binding = Mutex<Binding>(.waiting([]))

    private enum Binding {
        case waiting([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case failed(any Error)
    }

    /// Replies are flushed at least this often within one batch, so a batch of large values
    /// does not pile up in memory.
    private static let flushThreshold = 64 * 1024

    /// A transport serving `store`.
    ///
    /// - Parameters:
    ///   - configuration: address, secret and limits. An empty secret counts as none;
    ///     `maxLineBytes` and `maxConnections` must be at least 1.
    ///   - store: where commands are carried out.
    ///   - metrics: where `brain_commands_total{transport="line",cmd}` is registered.
    ///   - logger: for start, stop and connection errors.
    ///   - requestShutdown: called after a client's `shutdown` has been answered; the node is
    ///     then expected to shut down gracefully.
    public init(
        configuration: LineTransportConfiguration, store: any Store, metrics: Metrics, logger: Logger,
        requestShutdown: @escaping @Sendable () -> Void
    ) {
        precondition(configuration.maxLineBytes >= 1, "maxLineBytes must be at least 1")
        precondition(configuration.maxConnections >= 1, "maxConnections must be at least 1")
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.requestShutdown = requestShutdown
        self.counters = metrics.commandCounters(
            transport: "line", commands: LineCommandName.allCases.map(\.text))
        self.closes = metrics.connectionCloseCounters(transport: "line", reasons: CloseReason.allCases.map(\.label))
        if let secret = configuration.secret, !secret.isEmpty {
            self.secret = Array(secret.utf8)
        } else {
            self.secret = nil
        }
        self.eventLoopGroup = MultiThreadedEventLoopGroup.singleton
    }

    /// `"line"`.
    public var name: String { "line" }

    /// The port the transport listens on, once it is bound: the configured one, or the one
    /// the system picked for port 0. Waits until `run()` has bound; throws the bind error if
    /// binding failed.
    public func boundPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Int, any Error>? = binding.withLock { binding in
                switch binding {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    binding = .waiting(waiters)
                    return nil
                case .bound(let port):
                    return .success(port)
                case .failed(let error):
                    return .failure(error)
                }
            }
            if let outcome {
                continuation.resume(with: outcome)
            }
        }
    }

    /// Binds, serves until graceful shutdown, then stops as described on the type.
    ///
    /// - Throws: the bind error (address in use, bad host).
    public func run() async throws {
        let serverChannel: NIOAsyncChannel<NIOAsyncChannel<[LineFrame], ByteBuffer>, Never>
        do {
            serverChannel = try await bind()
        } catch {
            settleBinding(.failure(error))
            logger.error(
                "line protocol cannot listen on \(configuration.host):\(configuration.port): \(error)")
            throw error
        }
        let port = serverChannel.channel.localAddress?.port ?? configuration.port
        logger.info("line protocol listening on \(configuration.host):\(port)")
        settleBinding(.success(port))

        try await withGracefulShutdownHandler {
            try await serverChannel.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            let count = activeConnections.add(1, ordering: .relaxed).newValue
                            // The connection's task runs on its channel's event loop: no
                            // thread hop between reading a batch and answering it.
                            let executor = EventLoopTaskExecutor(connection.channel.eventLoop)
                            if count > configuration.maxConnections {
                                group.addTask(executorPreference: executor) { await self.reject(connection) }
                            } else {
                                group.addTask(executorPreference: executor) { await self.serve(connection) }
                            }
                        }
                    } catch is CancellationError {
                        // The service group cancelled us: stop as on graceful shutdown.
                    } catch {
                        logger.error("line protocol stopped accepting: \(error)")
                    }
                }
            }
        } onGracefulShutdown: {
            // Stop accepting; the connections stop on their own graceful-shutdown handlers.
            serverChannel.channel.close(promise: nil)
        }
        logger.info("line protocol stopped")
    }

    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<[LineFrame], ByteBuffer>, Never> {
        let maxLineBytes = configuration.maxLineBytes
        let idleTimeout = configuration.idleTimeout > .zero ? TimeAmount(configuration.idleTimeout) : nil
        let outputTimeout = TimeAmount(configuration.outputTimeout)
        let onClose: @Sendable (LineConnectionGuard.Reason) -> Void = { [self] reason in logGuardClose(reason) }
        let highWater = LineTransportConfiguration.outputHighWaterMark
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // A client that half-closes after its last command still gets its replies.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Replies beyond the high mark make the connection stop reading commands.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(
                        LineConnectionGuard(idleTimeout: idleTimeout, outputTimeout: outputTimeout, onClose: onClose))
                    try pipeline.addHandler(ByteToMessageHandler(LineDecoder(maxLineBytes: maxLineBytes)))
                    try pipeline.addHandler(LineBatchingHandler())
                    // At most a few reads' worth of commands wait for the connection's task.
                    return try NIOAsyncChannel<[LineFrame], ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2)))
                }
            }
    }

    /// Why the transport refused or closed a connection itself.
    private enum CloseReason: Int, CaseIterable {
        case tooManyConnections, idleTimeout, outputTimeout

        /// The `reason` label.
        var label: String {
            switch self {
            case .tooManyConnections: "too_many_connections"
            case .idleTimeout: "idle_timeout"
            case .outputTimeout: "output_timeout"
            }
        }
    }

    /// Counts a close, and logs one warning per 100 of each reason, so that a crowd of slow
    /// clients cannot flood the log.
    private func logGuardClose(_ reason: LineConnectionGuard.Reason) {
        let counted: CloseReason
        let message: String
        switch reason {
        case .idle:
            counted = .idleTimeout
            message = "line protocol closed a connection idle for \(configuration.idleTimeout)"
        case .notReading:
            counted = .outputTimeout
            message = "line protocol closed a connection that read none of its replies for \(configuration.outputTimeout)"
        }
        closes.add(counted.rawValue)
        let closed = closes.value(counted.rawValue)
        if closed % 100 == 1 {
            logger.warning("\(message)", metadata: ["closed_total": "\(closed)"])
        }
    }

    private func settleBinding(_ outcome: Result<Int, any Error>) {
        let waiters: [CheckedContinuation<Int, any Error>] = binding.withLock { binding in
            var waiters: [CheckedContinuation<Int, any Error>] = []
            if case .waiting(let pending) = binding { waiters = pending }
            switch outcome {
            case .success(let port): binding = .bound(port)
            case .failure(let error): binding = .failed(error)
            }
            return waiters
        }
        for waiter in waiters {
            waiter.resume(with: outcome)
        }
    }

    /// Answers a connection beyond `maxConnections` with `error too_many_connections` and
    /// closes it.
    private func reject(_ connection: NIOAsyncChannel<[LineFrame], ByteBuffer>) async {
        defer { activeConnections.subtract(1, ordering: .relaxed) }
        // One warning per 1,000 refusals, so that a flood of connections cannot flood the log.
        closes.add(CloseReason.tooManyConnections.rawValue)
        let refused = closes.value(CloseReason.tooManyConnections.rawValue)
        if refused % 1000 == 1 {
            logger.warning(
                "line protocol refused a connection: \(configuration.maxConnections) connections already open",
                metadata: ["refused_total": "\(refused)"])
        }
        let channel = connection.channel
        var reply = channel.allocator.buffer(capacity: 40)
        LineReplyEncoder.encode(LineProtocolError.tooManyConnections, into: &reply)
        try? await connection.executeThenClose { _, _ in
            try await channel.writeAndFlush(reply).get()
        }
    }

    /// Serves one connection until the client quits or leaves, a line is too long, or the
    /// node shuts down. Never throws: a connection's failure is its own.
    private func serve(_ connection: NIOAsyncChannel<[LineFrame], ByteBuffer>) async {
        defer { activeConnections.subtract(1, ordering: .relaxed) }
        let channel = connection.channel
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await withGracefulShutdownHandler {
                    try await converse(channel: channel, inbound: inbound, outbound: outbound)
                } onGracefulShutdown: {
                    // Read no more; what was already read is answered, then the connection
                    // closes when the inbound stream ends.
                    let promise = channel.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenFailure { error in
                        if let error = error as? ChannelError, error == .inputClosed { return }
                        channel.close(promise: nil)
                    }
                    channel.close(mode: .input, promise: promise)
                }
            }
        } catch {
            logger.debug(
                "line protocol connection failed",
                metadata: ["peer": "\(channel.remoteAddress?.description ?? "?")", "error": "\(error)"])
        }
    }

    /// The command loop of one connection. Returns once every reply has reached the socket.
    private func converse(
        channel: any Channel, inbound: NIOAsyncChannelInboundStream<[LineFrame]>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        var session = LineSession(secret: secret)
        var output = channel.allocator.buffer(capacity: 1024)
        batches: for try await batch in inbound {
            for frame in batch {
                let line: ByteBuffer
                switch frame {
                case .line(let bytes):
                    line = bytes
                case .tooLong(let limit):
                    LineReplyEncoder.encode(LineProtocolError.lineTooLong(limit: limit), into: &output)
                    break batches
                }
                let step = line.withUnsafeReadableBytes { session.receive($0) }
                if let command = step.command {
                    counters.add(command.rawValue)
                }
                switch step.directive {
                case .ignore:
                    break
                case .execute(let command, let durability):
                    let reply = await store.execute(command, durability: durability)
                    LineReplyEncoder.encode(reply, into: &output)
                case .replyOK:
                    LineReplyEncoder.encodeFlag(true, into: &output)
                case .replyError(let error):
                    LineReplyEncoder.encode(error, into: &output)
                case .replyHelp:
                    LineReplyEncoder.encodeHelp(into: &output)
                case .replyInfo:
                    LineReplyEncoder.encodeInfo(store.info().fields, into: &output)
                case .quit:
                    break batches
                case .shutdown:
                    LineReplyEncoder.encodeFlag(true, into: &output)
                    try await outbound.write(output)
                    output.clear()
                    logger.notice(
                        "line protocol client asked for shutdown",
                        metadata: ["peer": "\(channel.remoteAddress?.description ?? "?")"])
                    requestShutdown()
                }
                if output.readableBytes >= Self.flushThreshold {
                    try await outbound.write(output)
                    output.clear()
                }
            }
            // One flush for the replies of one read.
            if output.readableBytes > 0 {
                try await outbound.write(output)
                output.clear()
            }
        }
        // The connection closes next (quit, a line too long, end of input, shutdown): wait
        // until every reply has left, so that closing loses none.
        try await writeLast(output, to: channel)
    }

    /// Writes the last bytes of a connection and waits until they, and every reply before
    /// them, have reached the socket, so that closing next loses nothing.
    private func writeLast(_ output: ByteBuffer, to channel: any Channel) async throws {
        // Writes leave in order, so this write completing means the earlier ones have too.
        try await channel.writeAndFlush(output).get()
    }
}
