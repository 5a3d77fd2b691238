import NIOCore

/// Answers a connection beyond `maxConnections` with `error too_many_connections` and
/// closes it, executing nothing the client sent.
final class LineRefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let onRefuse: @Sendable () -> Void
    private var refused = false

    /// - Parameter onRefuse: called once, on the event loop, when the refusal is sent.
    init(onRefuse: @escaping @Sendable () -> Void) {
        self.onRefuse = onRefuse
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whatever the client sent is dropped.
    }

    private func refuse(_ context: ChannelHandlerContext) {
        guard !refused else { return }
        refused = true
        onRefuse()
        var reply = context.channel.allocator.buffer(capacity: 40)
        LineReplyEncoder.encode(LineProtocolError.tooManyConnections, into: &reply)
        context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
