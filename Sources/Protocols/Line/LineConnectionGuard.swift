import NIOCore

/// Disconnects a line client that sends nothing for the idle timeout, or that leaves its
/// replies unread for the output timeout.
///
/// It sits first in the pipeline, next to the socket, so that it sees every read and every
/// change of writability. It is an inbound handler only, so that writes, flushes and read
/// requests pass it by without a hop:
/// - **Idle.** Any bytes received restart the idle clock. With no idle timeout configured
///   the clock never runs.
/// - **Not reading.** The channel stops being writable once the replies waiting for the
///   socket pass the write buffer's high water mark; the connection then stops reading
///   commands (back-pressure), so its buffers stay bounded. If it stays unwritable for the
///   whole output timeout, the client is not reading at all and the connection is closed.
///   A client that reads slowly but keeps up now and then is never cut off.
final class LineConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Why a connection was closed.
    enum Reason: Sendable {
        case idle
        case notReading
    }

    private let idleTimeout: TimeAmount?
    private let outputTimeout: TimeAmount
    private let onClose: @Sendable (Reason) -> Void
    private var lastRead = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    private var stallCheck: Scheduled<Void>?

    /// - Parameters:
    ///   - idleTimeout: how long a client may send nothing; `nil` for ever.
    ///   - outputTimeout: how long the channel may stay unwritable.
    ///   - onClose: called on the event loop when the guard closes the connection.
    init(idleTimeout: TimeAmount?, outputTimeout: TimeAmount, onClose: @escaping @Sendable (Reason) -> Void) {
        self.idleTimeout = idleTimeout
        self.outputTimeout = outputTimeout
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelChecks()
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelChecks()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallCheck?.cancel()
            stallCheck = nil
        } else if stallCheck == nil {
            stallCheck = context.eventLoop.assumeIsolated().scheduleTask(in: outputTimeout) {
                self.stallCheck = nil
                guard !context.channel.isWritable else { return }
                self.close(context, because: .notReading)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func start(_ context: ChannelHandlerContext) {
        lastRead = .now()
        if idleCheck == nil, let idleTimeout {
            scheduleIdleCheck(context, at: lastRead + idleTimeout)
        }
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard let idleTimeout else { return }
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.idleCheck = nil
            let due = self.lastRead + idleTimeout
            if NIODeadline.now() >= due {
                self.close(context, because: .idle)
            } else {
                self.scheduleIdleCheck(context, at: due)
            }
        }
    }

    private func close(_ context: ChannelHandlerContext, because reason: Reason) {
        cancelChecks()
        guard context.channel.isActive else { return }
        onClose(reason)
        context.close(promise: nil)
    }

    private func cancelChecks() {
        idleCheck?.cancel()
        idleCheck = nil
        stallCheck?.cancel()
        stallCheck = nil
    }
}
