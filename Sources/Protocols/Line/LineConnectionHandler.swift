import Engine
import Logging
import NIOCore

/// Serves one line-protocol connection on its channel's event loop.
///
/// Commands run in the order they arrived and their replies leave in that order:
/// - A command the store can answer at once (a cache hit, a write acknowledged from memory)
///   is answered right there, on the event loop, with no task and no thread switch.
/// - One that must wait (a backend read, a persist-now write, the log's sync) runs in a task
///   on the same event loop; the commands after it wait in a queue until its reply is in.
/// - The replies of one socket read leave with one flush.
///
/// Memory stays bounded whatever the client does: once the replies waiting for the socket
/// pass the channel's high water mark, the handler stops executing commands and holds back
/// the next socket read until the client has read some; while a command waits, reading
/// stops too. So at most one read's worth of commands is queued.
final class LineConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = LineFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What every connection of a transport shares.
    struct Shared: Sendable {
        var store: any Store
        var counters: CounterSet
        var secret: [UInt8]?
        var logger: Logger
        var requestShutdown: @Sendable () -> Void
    }

    /// Replies are handed to the channel at least this often within one read, so that a read
    /// of many large values does not pile up in one buffer.
    static let writeThreshold = 64 * 1024

    private let shared: Shared
    private var session: LineSession
    private let output: ReplyOutput
    private var queue = CircularBuffer<LineFrame>()
    /// A command is running in a task; nothing else runs until its reply is in.
    private var waiting = false
    /// A read was asked for while the handler held reads back.
    private var readHeld = false
    /// No more input will come (end of input, or graceful shutdown): close once the queue is
    /// answered.
    private var inputEnded = false
    /// `quit`, a line too long: the connection closes once earlier replies are out.
    private var closing = false
    /// The last replies are on their way and the connection closes after them.
    private var finished = false

    init(shared: Shared, allocator: ByteBufferAllocator) {
        self.shared = shared
        self.session = LineSession(secret: shared.secret)
        self.output = ReplyOutput(allocator: allocator)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        queue.append(unwrapInboundIn(data))
        if !waiting { run(context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        output.flush(context)
        context.fireChannelReadComplete()
    }

    /// Fired into a connection's pipeline on graceful shutdown: read nothing more, answer
    /// what was read, then close.
    struct StopReading: Sendable {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is StopReading || (event as? ChannelEvent) == .inputClosed {
            inputEnded = true
            if !waiting {
                run(context)
                output.flush(context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !waiting {
            run(context)
            output.flush(context)
            releaseRead(context)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        shared.logger.debug(
            "line protocol connection failed",
            metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if waiting || closing || inputEnded || !context.channel.isWritable || !queue.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func releaseRead(_ context: ChannelHandlerContext) {
        guard readHeld, !waiting, !closing, !inputEnded, context.channel.isWritable, queue.isEmpty else { return }
        readHeld = false
        context.read()
    }

    // MARK: Running commands

    /// Answers queued commands until one must wait, the socket is full, or the queue is
    /// empty; then closes the connection if it is done.
    private func run(_ context: ChannelHandlerContext) {
        while !waiting, !closing, context.channel.isWritable, let frame = queue.popFirst() {
            handle(frame, context)
            if output.buffer.readableBytes >= Self.writeThreshold {
                output.write(context)
            }
        }
        if closing || (inputEnded && queue.isEmpty && !waiting) {
            finish(context)
        }
    }

    private func handle(_ frame: LineFrame, _ context: ChannelHandlerContext) {
        let line: ByteBuffer
        switch frame {
        case .line(let bytes):
            line = bytes
        case .tooLong(let limit):
            LineReplyEncoder.encode(LineProtocolError.lineTooLong(limit: limit), into: &output.buffer)
            closing = true
            return
        }
        let step = line.withUnsafeReadableBytes { session.receive($0) }
        if let command = step.command {
            shared.counters.add(command.rawValue)
        }
        switch step.directive {
        case .ignore:
            break
        case .execute(let command, let durability):
            if let reply = shared.store.executeNow(command, durability: durability) {
                LineReplyEncoder.encode(reply, into: &output.buffer)
            } else {
                wait(for: command, durability: durability, context)
            }
        case .replyOK:
            LineReplyEncoder.encodeFlag(true, into: &output.buffer)
        case .replyError(let error):
            LineReplyEncoder.encode(error, into: &output.buffer)
        case .replyHelp:
            LineReplyEncoder.encodeHelp(into: &output.buffer)
        case .replyInfo:
            LineReplyEncoder.encodeInfo(shared.store.info().fields, into: &output.buffer)
        case .quit:
            closing = true
        case .shutdown:
            LineReplyEncoder.encodeFlag(true, into: &output.buffer)
            output.flush(context)
            shared.logger.notice(
                "line protocol client asked for shutdown",
                metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "?")"])
            shared.requestShutdown()
        }
    }

    /// Runs a command that must wait in a task on this event loop; the queue resumes when
    /// its reply is in.
    private func wait(for command: Command, durability: Durability?, _ context: ChannelHandlerContext) {
        waiting = true
        // The replies before it need not wait for it.
        output.flush(context)
        let loop = context.eventLoop
        let resume = NIOLoopBound((self, context), eventLoop: loop)
        let store = shared.store
        Task(executorPreference: EventLoopTaskExecutor(loop)) {
            let reply = await store.execute(command, durability: durability)
            loop.execute {
                let (handler, context) = resume.value
                handler.resume(with: reply, context)
            }
        }
    }

    private func resume(with reply: Reply, _ context: ChannelHandlerContext) {
        waiting = false
        guard context.channel.isActive else { return }
        LineReplyEncoder.encode(reply, into: &output.buffer)
        run(context)
        output.flush(context)
        releaseRead(context)
    }

    // MARK: Writing

    /// Sends every reply, then closes the connection.
    private func finish(_ context: ChannelHandlerContext) {
        guard !finished, context.channel.isActive else { return }
        finished = true
        closing = true
        queue.removeAll()
        let last = output.takeRest()
        context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
