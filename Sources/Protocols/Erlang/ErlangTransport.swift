import Engine
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// An Erlang distribution node serving Brain's messages: what the first Brain's Erlang
/// programs, and PHP through an erl_interface bridge, talk to.
///
/// `run()` binds, registers the node's name with the local epmd (starting one if needed),
/// logs `erlang node <name> listening on <host>:<port>`, and accepts peers. Each connection
/// is served on its own event loop by an ``ErlangConnectionHandler``: the handshake
/// (cookie = ``ErlangTransportConfiguration/cookie``), then the link, whose messages are
/// carried out in order per key and concurrently across keys and links. A link holds at
/// most ``ErlangTransportConfiguration/maxPendingBytesPerLink`` of messages read but not yet
/// carried out, plus one socket read; past that it stops reading, so a peer that floods it
/// or does not read its replies slows down only itself.
///
/// On graceful shutdown the transport unregisters from epmd, stops accepting, stops reading
/// from every link, carries out the messages already read, sends their replies, closes the
/// links and returns.
public final class ErlangTransport: Transport {
    /// The settings the transport was made with.
    public let configuration: ErlangTransportConfiguration

    private let executor: ClientMessageExecutor
    private let logger: Logger
    private let counters: CounterSet
    private let eventLoopGroup: any EventLoopGroup
    private let links = LinkRegistry()
    private let activeConnections = Atomic<Int>(0)
    /// The connections being served (not those refused), to stop on graceful shutdown.
    private let openConnections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let binding = PortBinding()
    private let policy: SignalPolicy
    private let malformedLog: LogLimiter
    private let failureLog: LogLimiter
    private let droppedLog: LogLimiter
    private let refusedLog: LogLimiter
    /// `brain_connections_closed_total{transport="erlang",reason="too_many_connections"}`.
    private let refusals: CounterSet
    /// The handshake's settings, once the node is registered (they hold epmd's creation).
    private let handshake = Mutex<DistributionHandshake.Configuration?>(nil)

    /// A transport serving `store`.
    ///
    /// - Parameters:
    ///   - configuration: node name, cookie, address and limits; checked by `run()`.
    ///   - store: where commands are carried out.
    ///   - metrics: where `brain_commands_total{transport="erlang",cmd}` is registered.
    ///   - logger: for start, stop, links and refused peers.
    public init(configuration: ErlangTransportConfiguration, store: any Store, metrics: Metrics, logger: Logger) {
        self.configuration = configuration
        self.executor = ClientMessageExecutor(store: store, limits: configuration.termLimits)
        self.logger = logger
        self.counters = metrics.commandCounters(
            transport: "erlang", commands: ErlangCommandName.allCases.map(\.text))
        self.eventLoopGroup = MultiThreadedEventLoopGroup.singleton
        self.policy = SignalPolicy(
            servedNames: [Atom(configuration.registeredName), ErlangConnectionHandler.netKernel])
        self.malformedLog = LogLimiter(logger: logger, level: .warning)
        self.failureLog = LogLimiter(logger: logger, level: .warning)
        self.droppedLog = LogLimiter(logger: logger, level: .warning)
        self.refusedLog = LogLimiter(logger: logger, level: .warning)
        self.refusals = metrics.connectionCloseCounters(transport: "erlang", reasons: ["too_many_connections"])
    }

    /// `"erlang"`.
    public var name: String { "erlang" }

    /// The distribution port, once `run()` has bound it and registered with epmd: the
    /// configured one, or the one the system picked for port 0. Throws the start-up error if
    /// binding or registering failed.
    public func boundPort() async throws -> Int {
        try await binding.port()
    }

    /// The names of the nodes connected now.
    public var connectedNodes: [String] { links.names.sorted() }

    /// Binds, registers with epmd, serves until graceful shutdown, then stops as described on
    /// the type.
    ///
    /// - Throws: ``ErlangTransportError`` when the configuration cannot work or epmd refuses
    ///   the node (`epmd_unavailable`, `name_in_use`, `epmd_protocol`), or the bind error.
    public func run() async throws {
        let nodeName = configuration.nodeName
        do {
            try configuration.validate()
        } catch {
            binding.settle(.failure(error))
            logger.error("erlang node \(nodeName) cannot start: \(error)")
            throw error
        }
        let server: NIOAsyncChannel<any Channel, Never>
        do {
            server = try await bind()
        } catch {
            binding.settle(.failure(error))
            logger.error("erlang node \(nodeName) cannot listen on \(configuration.host):\(configuration.port): \(error)")
            throw error
        }
        let port = server.channel.localAddress?.port ?? configuration.port
        let registration: EPMDRegistration
        do {
            registration = try await EPMDRegistration.register(
                name: EPMDProtocol.aliveName(of: nodeName), port: port, hidden: false,
                epmdPort: configuration.epmdPort, startEPMD: configuration.startEPMD,
                timeout: configuration.setupTime, eventLoopGroup: eventLoopGroup, logger: logger)
        } catch {
            binding.settle(.failure(error))
            logger.error("erlang node \(nodeName) cannot register with epmd: \(error)")
            try? await server.channel.close()
            throw error
        }
        handshake.withLock {
            $0 = DistributionHandshake.Configuration(
                localNode: nodeName, creation: registration.creation, cookie: Array(configuration.cookie.utf8))
        }
        logger.info(
            "erlang node \(nodeName) listening on \(configuration.host):\(port) (epmd creation \(registration.creation)); messages go to \(configuration.registeredName)")
        binding.settle(.success(port))

        try await withGracefulShutdownHandler {
            try await server.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            // The connection serves itself on its event loop; wait for it to
                            // close, so that run() returns only once every link has.
                            group.addTask { try? await connection.closeFuture.get() }
                        }
                    } catch is CancellationError {
                        // The service group cancelled us: stop as on graceful shutdown.
                    } catch {
                        logger.error("erlang node stopped accepting: \(error)")
                    }
                    // Read no more from any link; each carries out what it already read,
                    // sends the replies, then closes.
                    for connection in openConnections.withLock({ Array($0.values) }) {
                        connection.pipeline.fireUserInboundEventTriggered(ErlangConnectionHandler.StopReading())
                    }
                }
            }
        } onGracefulShutdown: {
            // Peers can no longer find the node; the accept loop then stops every link.
            registration.close()
            server.channel.close(promise: nil)
        }
        registration.close()
        logger.info("erlang node \(nodeName) stopped")
    }

    private func bind() async throws -> NIOAsyncChannel<any Channel, Never> {
        let maxFrameBytes = configuration.maxFrameBytes
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    let open = self.activeConnections.add(1, ordering: .relaxed).newValue
                    channel.closeFuture.whenComplete { _ in self.connectionClosed(channel) }
                    if open > self.configuration.maxConnections {
                        try pipeline.addHandler(ConnectionRefusalHandler(farewell: nil, onRefuse: { self.logRefusal() }))
                        return channel
                    }
                    // Until the name is registered, no peer can have been told the port.
                    guard let handshake = self.handshake.withLock({ $0 }) else {
                        try pipeline.addHandler(ConnectionRefusalHandler(farewell: nil, onRefuse: {}))
                        return channel
                    }
                    self.openConnections.withLock { $0[ObjectIdentifier(channel)] = channel }
                    let receiveCounter = ReceiveCounter()
                    try pipeline.addHandler(receiveCounter)
                    try pipeline.addHandler(ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: maxFrameBytes)))
                    try pipeline.addHandler(
                        ErlangConnectionHandler(
                            shared: self.connectionShared(handshake), receiveCounter: receiveCounter,
                            allocator: channel.allocator))
                    return channel
                }
            }
    }

    private func connectionShared(_ handshake: DistributionHandshake.Configuration) -> ErlangConnectionHandler.Shared {
        ErlangConnectionHandler.Shared(
            executor: executor, counters: counters, policy: policy, links: links, handshake: handshake,
            setupTime: configuration.setupTime, tickTime: configuration.tickTime,
            maxPendingBytes: configuration.maxPendingBytesPerLink, logger: logger, malformedLog: malformedLog,
            failureLog: failureLog, droppedLog: droppedLog, refusedLog: refusedLog)
    }

    private func connectionClosed(_ channel: any Channel) {
        activeConnections.subtract(1, ordering: .relaxed)
        openConnections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Counts and logs a connection closed at once because `maxConnections` are open.
    private func logRefusal() {
        refusals.add(0)
        refusedLog.log("erlang node refused a connection: \(configuration.maxConnections) connections already open")
    }
}
