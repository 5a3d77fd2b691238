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
/// runs in a task of its own and catches its own errors. After the handshake (cookie =
/// ``ErlangTransportConfiguration/cookie``), a link reads frames in order and hands Brain's
/// messages to a small set of lanes chosen by key: messages on one key are carried out in the
/// order they arrived, messages on different keys (and on different links) concurrently.
/// A link holds at most ``ErlangTransportConfiguration/maxPendingBytesPerLink`` of messages
/// read but not yet carried out; past that it stops reading, so a peer that floods it or
/// does not read its replies slows down only itself.
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
    private let binding = PortBinding()
    private let policy: SignalPolicy
    private let servedName: Atom
    private let malformedLog: LogLimiter
    private let failureLog: LogLimiter
    private let droppedLog: LogLimiter
    private let refusedLog: LogLimiter
    /// `brain_connections_closed_total{transport="erlang",reason="too_many_connections"}`.
    private let refusals: CounterSet

    /// A message read from a link, waiting for its lane.
    private struct PendingMessage: Sendable {
        var message: ClientMessage
        /// The bytes it holds of the link's budget.
        var cost: Int
    }

    /// Lanes per link: messages whose keys hash to different lanes run concurrently.
    static let laneCount = 8
    private static let netKernel: Atom = "net_kernel"

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
        self.servedName = Atom(configuration.registeredName)
        self.policy = SignalPolicy(servedNames: [Atom(configuration.registeredName), Self.netKernel])
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
        let server: NIOAsyncChannel<NIOAsyncChannel<DistributionFrame, ByteBuffer>, Never>
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
        let handshake = DistributionHandshake.Configuration(
            localNode: nodeName, creation: registration.creation, cookie: Array(configuration.cookie.utf8))
        logger.info(
            "erlang node \(nodeName) listening on \(configuration.host):\(port) (epmd creation \(registration.creation)); messages go to \(configuration.registeredName)")
        binding.settle(.success(port))

        try await withGracefulShutdownHandler {
            try await server.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            let count = activeConnections.add(1, ordering: .relaxed).newValue
                            if count > configuration.maxConnections {
                                group.addTask { await self.refuse(connection) }
                            } else {
                                group.addTask { await self.serve(connection, handshake: handshake) }
                            }
                        }
                    } catch is CancellationError {
                        // The service group cancelled us: stop as on graceful shutdown.
                    } catch {
                        logger.error("erlang node stopped accepting: \(error)")
                    }
                }
            }
        } onGracefulShutdown: {
            // Peers can no longer find the node; links stop on their own shutdown handlers.
            registration.close()
            server.channel.close(promise: nil)
        }
        registration.close()
        logger.info("erlang node \(nodeName) stopped")
    }

    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<DistributionFrame, ByteBuffer>, Never> {
        let maxFrameBytes = configuration.maxFrameBytes
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(DistributionFrameDecoder(maxFrameBytes: maxFrameBytes)))
                    // Few frames wait unread: each may be as large as the frame limit.
                    return try NIOAsyncChannel<DistributionFrame, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2)))
                }
            }
    }

    /// Closes a connection beyond `maxConnections` at once.
    private func refuse(_ connection: NIOAsyncChannel<DistributionFrame, ByteBuffer>) async {
        defer { activeConnections.subtract(1, ordering: .relaxed) }
        refusals.add(0)
        refusedLog.log("erlang node refused a connection: \(configuration.maxConnections) connections already open")
        try? await connection.executeThenClose { _, _ in }
    }

    // MARK: - One connection

    /// Serves one connection: the handshake, then the link until the peer leaves, the link
    /// fails, or the node shuts down. Never throws: a connection's failure is its own.
    private func serve(
        _ connection: NIOAsyncChannel<DistributionFrame, ByteBuffer>, handshake: DistributionHandshake.Configuration
    ) async {
        defer { activeConnections.subtract(1, ordering: .relaxed) }
        let channel = connection.channel
        let remote = channel.remoteAddress?.description ?? "?"
        do {
            try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                guard let peer = try await shake(channel: channel, frames: &frames, configuration: handshake, remote: remote)
                else { return }
                let link = Link(peer: peer, channel: channel, outbound: outbound)
                if let retired = links.register(link) {
                    logger.notice("erlang node \(peer.name) connected again; its previous link is closed")
                    retired.close()
                }
                logger.info(
                    "erlang link up: \(peer.name)\(peer.isHidden ? " (hidden)" : "")",
                    metadata: ["peer": "\(remote)", "flags": "\(peer.negotiatedFlags)"])
                defer { links.remove(link) }
                let reason = await withGracefulShutdownHandler {
                    await converse(link, frames: &frames)
                } onGracefulShutdown: {
                    link.stopReading()
                }
                logger.info("erlang link down: \(peer.name) (\(reason))")
            }
        } catch {
            logger.debug("erlang connection failed", metadata: ["peer": "\(remote)", "error": "\(error)"])
        }
    }

    /// Runs the handshake; returns the peer, or nil when the connection was refused or closed.
    private func shake(
        channel: any Channel, frames: inout NIOAsyncChannelInboundStream<DistributionFrame>.AsyncIterator,
        configuration handshake: DistributionHandshake.Configuration, remote: String
    ) async throws -> DistributionHandshake.Peer? {
        var machine = DistributionHandshake(configuration: handshake, challenge: UInt32.random(in: 0...UInt32.max))
        let timedOut = Flag()
        let setupTime = configuration.setupTime
        while true {
            let timer = channel.eventLoop.scheduleTask(in: .milliseconds(setupTime.milliseconds)) {
                timedOut.set()
                channel.close(promise: nil)
            }
            let frame: DistributionFrame?
            do {
                frame = try await frames.next()
                timer.cancel()
            } catch {
                timer.cancel()
                refusedLog.log("erlang handshake from \(remote) failed: \(error)")
                return nil
            }
            guard case .handshake(let message) = frame else {
                if timedOut.isSet {
                    let error = ErlangTransportError(.handshakeTimeout, "a handshake step took more than \(setupTime)")
                    refusedLog.log("erlang handshake from \(remote) refused: \(error)")
                }
                return nil
            }
            for directive in machine.receive(Array(message.readableBytesView)) {
                switch directive {
                case .send(let bytes):
                    try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
                case .close(let error):
                    refusedLog.log("erlang handshake from \(remote) refused: \(error)")
                    return nil
                case .established(let peer):
                    return peer
                }
            }
        }
    }

    /// Reads the link's frames until it ends; returns why it ended.
    private func converse(
        _ link: Link, frames: inout NIOAsyncChannelInboundStream<DistributionFrame>.AsyncIterator
    ) async -> String {
        let budget = ByteBudget(capacity: configuration.maxPendingBytesPerLink)
        return await withTaskGroup(of: Void.self) { ticking in
            ticking.addTask { await self.tick(link, budget: budget) }
            let reason = await withDiscardingTaskGroup { lanes -> String in
                var queues: [AsyncStream<PendingMessage>.Continuation] = []
                for _ in 0..<Self.laneCount {
                    let (stream, queue) = AsyncStream.makeStream(of: PendingMessage.self)
                    queues.append(queue)
                    lanes.addTask {
                        for await pending in stream {
                            await self.carryOut(pending.message, on: link)
                            budget.release(pending.cost)
                        }
                    }
                }
                defer { for queue in queues { queue.finish() } }
                do {
                    while let frame = try await frames.next() {
                        link.noteRead()
                        guard case .data(let body) = frame else { continue }
                        try await receive(body, on: link, budget: budget, queues: queues)
                    }
                    return "closed"
                } catch let error as ErlangTransportError {
                    logger.warning("erlang link to \(link.peer.name) closed: \(error)")
                    return error.code.rawValue
                } catch {
                    return "\(error)"
                }
            }
            ticking.cancelAll()
            return reason
        }
    }

    /// Handles one frame of a connected link.
    ///
    /// - Throws: ``ErlangTransportError`` (`malformed_frame`) when the frame is not a
    ///   distribution message; the link is then closed.
    private func receive(
        _ body: ByteBuffer, on link: Link, budget: ByteBudget, queues: [AsyncStream<PendingMessage>.Continuation]
    ) async throws {
        let limits = configuration.termLimits
        let message = try body.withUnsafeReadableBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: limits)
        }
        switch policy.action(for: message.control) {
        case .ignore:
            return
        case .answer(let frame):
            try? await link.write(frame)
        case .deliver(let name, let from):
            let term: Term
            switch message.payload {
            case .success(let decoded)?:
                term = decoded
            case .failure(let error)?:
                malformedLog.log("erlang: ignored a message from \(from.node.name) that does not decode: \(error)")
                return
            case nil:
                return
            }
            if name == Self.netKernel {
                if let reply = SignalPolicy.netKernelReply(to: term) {
                    await deliver(reply.message, to: reply.to, from: link)
                }
                return
            }
            switch ClientMessageParser.parse(term) {
            case .success(let client):
                counters.add(client.commandName.rawValue)
                let cost = await budget.acquire(body.readableBytes + 64)
                queues[Self.lane(for: client.key)].yield(PendingMessage(message: client, cost: cost))
            case .failure(let malformed):
                if let command = malformed.command { counters.add(command.rawValue) }
                malformedLog.log("erlang: ignored a malformed message from \(from.node.name): \(malformed.reason)")
                if let pid = malformed.replyTo, let reply = malformed.replyMessage {
                    await deliver(reply, to: pid, from: link)
                }
            }
        }
    }

    /// The lane of a key: FNV-1a, so that one key always lands in the same lane.
    static func lane(for key: [UInt8]) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(laneCount))
    }

    /// Carries out one of Brain's messages and sends its reply, if it has one.
    private func carryOut(_ message: ClientMessage, on link: Link) async {
        switch await executor.execute(message) {
        case .reply(let pid, let reply):
            await deliver(reply, to: pid, from: link)
        case .failed(let reason):
            failureLog.log("erlang: \(reason) (from \(link.peer.name))")
        case .done:
            break
        }
    }

    /// Sends `message` to `pid` over the link to its node. The link the request came on is
    /// waited for when the peer reads slowly; another node's link is written only if it can
    /// take the frame now, so that one slow peer never stalls another. A reply to a node
    /// with no link is dropped: Brain never dials out (C nodes do not even listen).
    private func deliver(_ message: Term, to pid: Pid, from link: Link) async {
        let frame = OutgoingFrame.send(to: pid, message: message)
        let node = pid.node.name
        if node == link.peer.name {
            do {
                try await link.write(frame)
            } catch {
                droppedLog.log("erlang: a reply to \(node) was lost: its link closed")
            }
            return
        }
        guard let target = links.link(named: node) else {
            droppedLog.log("erlang: a reply to a process on \(node) was dropped: that node has no link to this one")
            return
        }
        if !target.writeIfWritable(frame) {
            droppedLog.log("erlang: a reply to a process on \(node) was dropped: its link is not reading")
        }
    }

    /// Sends ticks and drops the link when the peer has gone silent (see ``LinkTicker``).
    private func tick(_ link: Link, budget: ByteBudget) async {
        let interval = configuration.tickTime / 4
        var ticker = LinkTicker(framesRead: link.framesRead, framesWritten: link.framesWritten)
        while true {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            // A reader waiting for its lanes is busy, not facing silence, unless the lanes are
            // stuck because the peer reads nothing: then the peer is as good as gone.
            let readerBusy = budget.hasWaiters && link.channel.isWritable
            let decision = ticker.check(
                framesRead: link.framesRead, framesWritten: link.framesWritten, readerBusy: readerBusy)
            if decision.close {
                let error = ErlangTransportError(
                    .linkSilent, "nothing received for more than the tick time, \(configuration.tickTime)")
                logger.warning("erlang link to \(link.peer.name) closed: \(error)")
                link.close()
                return
            }
            if decision.sendTick {
                // Never wait here: a peer that reads nothing must not stop the silence check.
                // Its socket holds unread frames anyway, which tell it we are alive.
                _ = link.writeIfWritable(OutgoingFrame.tick)
            }
        }
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
