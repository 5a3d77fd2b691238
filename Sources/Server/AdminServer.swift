import Engine
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Whether the node takes traffic: set once start-up (spill recovery included) is done, and
/// cleared when graceful shutdown begins. `/ready` answers from it.
final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    var isReady: Bool { ready.load(ordering: .acquiring) }
    func set(_ value: Bool) { ready.store(value, ordering: .releasing) }
}

/// The admin HTTP port: `/metrics` (Prometheus text format), `/health` (200 while the process
/// serves) and `/ready` (200 when ready for traffic, 503 while starting or stopping).
final class AdminServer: Service {
    private let host: String
    private let port: Int
    private let store: CacheStore
    private let metrics: Metrics
    private let readiness: Readiness
    private let logger: Logger

    init(host: String, port: Int, store: CacheStore, metrics: Metrics, readiness: Readiness, logger: Logger) {
        self.host = host
        self.port = port
        self.store = store
        self.metrics = metrics
        self.readiness = readiness
        self.logger = logger
    }

    func run() async throws {
        let store = store
        let metrics = metrics
        let readiness = readiness
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHandler(store: store, metrics: metrics, readiness: readiness))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("admin HTTP listening on \(host):\(channel.localAddress?.port ?? port) (/metrics /health /ready)")
        try? await gracefulShutdown()
        readiness.set(false)
        try await channel.close()
    }
}

/// Answers one admin request per HTTP request.
private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let store: CacheStore
    private let metrics: Metrics
    private let readiness: Readiness
    private var head: HTTPRequestHead?

    init(store: CacheStore, metrics: Metrics, readiness: Readiness) {
        self.store = store
        self.metrics = metrics
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, contentType, body) = respond(to: head)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            if head.isKeepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let closed = context.eventLoop.makePromise(of: Void.self)
                closed.futureResult.assumeIsolated().whenComplete { [context] _ in context.close(promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: closed)
            }
        }
    }

    private func respond(to head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "text/plain", "only GET\n")
        }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render(store.info()))
        case "/health":
            return (.ok, "text/plain", "ok\n")
        case "/ready":
            return readiness.isReady ? (.ok, "text/plain", "ready\n") : (.serviceUnavailable, "text/plain", "not ready\n")
        default:
            return (.notFound, "text/plain", "not found: try /metrics, /health or /ready\n")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
