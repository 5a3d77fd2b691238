import Engine
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A node's registration with the local epmd: an open TCP connection to it.
///
/// epmd keeps a name registered for as long as the connection that registered it stays
/// open, so the registration lives exactly as long as this object's connection: ``close()``
/// unregisters the node.
final class EPMDRegistration: Sendable {
    /// The node's incarnation, as epmd returned it.
    let creation: UInt32
    private let channel: any Channel
    private let closing = Atomic<Bool>(false)

    private init(creation: UInt32, channel: any Channel) {
        self.creation = creation
        self.channel = channel
    }

    /// Registers `name` (the part of the node name before `@`) as listening on `port`.
    ///
    /// When no epmd answers on `127.0.0.1:epmdPort` and `startEPMD` is true, runs
    /// `epmd -daemon` once and tries again for a few seconds, as `erl` does.
    ///
    /// - Throws: ``ErlangTransportError``: `epmd_unavailable` (none answers and none could
    ///   be started), `name_in_use` (another node has the name), `epmd_protocol` (no valid
    ///   answer within `timeout`).
    static func register(
        name: String, port: Int, hidden: Bool, epmdPort: Int, startEPMD: Bool, timeout: Duration,
        eventLoopGroup: any EventLoopGroup, logger: Logger
    ) async throws -> EPMDRegistration {
        let channel = try await connect(port: epmdPort, startEPMD: startEPMD, eventLoopGroup: eventLoopGroup, logger: logger)
        let promise = channel.eventLoop.makePromise(of: EPMDProtocol.Registration.self)
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(timeout.milliseconds)) {
            promise.fail(ErlangTransportError(.epmdProtocol, "epmd on 127.0.0.1:\(epmdPort) did not answer the registration within \(timeout)"))
        }
        let registration: EPMDProtocol.Registration
        do {
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(EPMDReplyHandler(promise: promise))
            }.get()
            let request = EPMDProtocol.alive2Request(name: name, port: UInt16(port), hidden: hidden)
            try await channel.writeAndFlush(ByteBuffer(bytes: request))
            registration = try await promise.futureResult.get()
            timer.cancel()
        } catch {
            timer.cancel()
            promise.fail(error)
            try? await channel.close()
            throw error
        }
        switch registration {
        case .registered(let creation):
            let registered = EPMDRegistration(creation: creation, channel: channel)
            channel.closeFuture.whenComplete { [registered] _ in
                if !registered.closing.load(ordering: .relaxed) {
                    logger.error(
                        "epmd closed the registration of \(name): peers can no longer find this node until it restarts")
                }
            }
            return registered
        case .refused(let result):
            try? await channel.close()
            throw ErlangTransportError(
                .nameInUse,
                "epmd refused to register the name \(name) (result \(result)): another node on this host already uses it; stop that node or choose another erlang_node")
        }
    }

    /// Unregisters the node by closing the connection. Safe to call more than once.
    func close() {
        guard !closing.exchange(true, ordering: .relaxed) else { return }
        channel.close(promise: nil)
    }

    private static func connect(
        port: Int, startEPMD: Bool, eventLoopGroup: any EventLoopGroup, logger: Logger
    ) async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        do {
            return try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        } catch {
            guard startEPMD else {
                throw ErlangTransportError(
                    .epmdUnavailable,
                    "no epmd answers on 127.0.0.1:\(port) (\(error)); start it with `epmd -daemon` (it comes with Erlang)")
            }
            logger.notice("no epmd answers on 127.0.0.1:\(port); starting one with `epmd -daemon`")
            do {
                try runEPMDDaemon(port: port)
            } catch {
                throw ErlangTransportError(
                    .epmdUnavailable,
                    "no epmd answers on 127.0.0.1:\(port), and `epmd -daemon` could not be run (\(error)); install Erlang's epmd and start it with `epmd -daemon`")
            }
            // The daemon forks and then opens its port: give it a moment.
            var lastError: any Error = error
            for _ in 0..<30 {
                try await Task.sleep(for: .milliseconds(100))
                do {
                    return try await bootstrap.connect(host: "127.0.0.1", port: port).get()
                } catch {
                    lastError = error
                }
            }
            throw ErlangTransportError(
                .epmdUnavailable,
                "`epmd -daemon` ran, but no epmd answers on 127.0.0.1:\(port) (\(lastError)); start it with `epmd -daemon`")
        }
    }

    /// Runs `epmd -daemon` (found on `PATH`) and waits for it to fork.
    private static func runEPMDDaemon(port: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["epmd", "-daemon"]
        if port != EPMDProtocol.defaultPort { arguments += ["-port", String(port)] }
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ErlangTransportError(
                .epmdUnavailable, "`epmd -daemon` exited with status \(process.terminationStatus) (127: epmd is not on PATH)")
        }
    }
}

/// Collects epmd's reply to `ALIVE2_REQ` and completes the promise with it.
private final class EPMDReplyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<EPMDProtocol.Registration>
    private var received: [UInt8] = []
    private var answered = false

    init(promise: EventLoopPromise<EPMDProtocol.Registration>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let buffer = unwrapInboundIn(data)
        received.append(contentsOf: buffer.readableBytesView.prefix(16))
        do {
            if let registration = try EPMDProtocol.parseAlive2Response(received) {
                answered = true
                promise.succeed(registration)
            }
        } catch {
            answered = true
            promise.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered {
            answered = true
            promise.fail(ErlangTransportError(.epmdProtocol, "epmd closed the connection without answering the registration"))
        }
        context.fireChannelInactive()
    }
}
