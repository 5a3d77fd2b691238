import NIOCore

/// Groups the frames that one socket read produced into one message.
///
/// A pipelining client sends many commands at once; the connection handles them as one
/// batch and writes all their replies with a single flush, instead of one system call per
/// reply. Frames are passed on, in order, when the read completes, and also before the input
/// ends, the channel goes inactive or an error passes, so that no frame is ever held back.
final class LineBatchingHandler: ChannelInboundHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = [LineFrame]

    private var pending: [LineFrame] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliver(context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        deliver(context)
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        deliver(context)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deliver(context)
        context.fireChannelInactive()
    }

    private func deliver(_ context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        context.fireChannelRead(wrapInboundOut(batch))
    }
}
