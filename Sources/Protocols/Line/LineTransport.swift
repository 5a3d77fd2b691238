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
    private let binding = PortBinding()
    /// The connections being served, to stop them on graceful shutdown.
    private let openConnections = Mutex<[ObjectIdentifier: any Channel]>([:])

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
        try await binding.port()
    }

    /// Binds, serves until graceful shutdown, then stops as described on the type.
    ///
    /// - Throws: the bind error (address in use, bad host).
    public func run() async throws {
        let serverChannel: NIOAsyncChannel<any Channel, Never>
        do {
            serverChannel = try await bind()
        } catch {
            binding.settle(.failure(error))
            logger.error(
                "line protocol cannot listen on \(configuration.host):\(configuration.port): \(error)")
            throw error
        }
        let port = serverChannel.channel.localAddress?.port ?? configuration.port
        logger.info("line protocol listening on \(configuration.host):\(port)")
        binding.settle(.success(port))

        try await withGracefulShutdownHandler {
            try await serverChannel.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            // The connection serves itself on its event loop; wait for it to
                            // close, so that run() returns only once every connection has.
                            group.addTask { try? await connection.closeFuture.get() }
                        }
                    } catch is CancellationError {
                        // The service group cancelled us: stop as on graceful shutdown.
                    } catch {
                        logger.error("line protocol stopped accepting: \(error)")
                    }
                    // Read no more from any connection; each answers what it already read,
                    // then closes.
                    for connection in openConnections.withLock({ Array($0.values) }) {
                        Self.stopReading(connection)
                    }
                }
            }
        } onGracefulShutdown: {
            // Stop accepting; the accept loop then stops every connection.
            serverChannel.channel.close(promise: nil)
        }
        logger.info("line protocol stopped")
    }

    /// Makes a connection read no more: it answers the commands it already read, then closes.
    private static func stopReading(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(LineConnectionHandler.StopReading())
    }

    private func bind() async throws -> NIOAsyncChannel<any Channel, Never> {
        let maxLineBytes = configuration.maxLineBytes
        let idleTimeout = configuration.idleTimeout > .zero ? TimeAmount(configuration.idleTimeout) : nil
        let outputTimeout = TimeAmount(configuration.outputTimeout)
        let onClose: @Sendable (LineConnectionGuard.Reason) -> Void = { [self] reason in logGuardClose(reason) }
        let highWater = LineTransportConfiguration.outputHighWaterMark
        let shared = LineConnectionHandler.Shared(
            store: store, counters: counters, secret: secret, logger: logger, requestShutdown: requestShutdown)
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
                    let open = self.activeConnections.add(1, ordering: .relaxed).newValue
                    channel.closeFuture.whenComplete { _ in self.connectionClosed(channel) }
                    if open > self.configuration.maxConnections {
                        var farewell = channel.allocator.buffer(capacity: 40)
                        LineReplyEncoder.encode(LineProtocolError.tooManyConnections, into: &farewell)
                        try pipeline.addHandler(ConnectionRefusalHandler(farewell: farewell, onRefuse: { self.logRefusal() }))
                        return channel
                    }
                    self.openConnections.withLock { $0[ObjectIdentifier(channel)] = channel }
                    try pipeline.addHandler(
                        LineConnectionGuard(idleTimeout: idleTimeout, outputTimeout: outputTimeout, onClose: onClose))
                    try pipeline.addHandler(ByteToMessageHandler(LineDecoder(maxLineBytes: maxLineBytes)))
                    try pipeline.addHandler(LineConnectionHandler(shared: shared, allocator: channel.allocator))
                    return channel
                }
            }
    }

    private func connectionClosed(_ channel: any Channel) {
        activeConnections.subtract(1, ordering: .relaxed)
        openConnections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Counts a connection refused past `maxConnections`, with one warning per 1,000.
    private func logRefusal() {
        closes.add(CloseReason.tooManyConnections.rawValue)
        let refused = closes.value(CloseReason.tooManyConnections.rawValue)
        if refused % 1000 == 1 {
            logger.warning(
                "line protocol refused a connection: \(configuration.maxConnections) connections already open",
                metadata: ["refused_total": "\(refused)"])
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
}
