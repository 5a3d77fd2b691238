import NIOCore

/// Closes a connection a transport does not serve (beyond its connection limit), after
/// sending it a farewell if there is one, and executes nothing the client sent.
public final class ConnectionRefusalHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let farewell: ByteBuffer?
    private let onRefuse: @Sendable () -> Void
    private var refused = false

    /// - Parameters:
    ///   - farewell: what to send before closing (the line protocol's `error
    ///     too_many_connections`), or nil to close at once.
    ///   - onRefuse: called once, on the event loop, when the connection is refused.
    public init(farewell: ByteBuffer?, onRefuse: @escaping @Sendable () -> Void) {
        self.farewell = farewell
        self.onRefuse = onRefuse
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        refuse(context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sent is dropped.
    }

    private func refuse(_ context: ChannelHandlerContext) {
        guard !refused else { return }
        refused = true
        onRefuse()
        guard let farewell else {
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(farewell)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
