import Engine
import Logging
import NIOCore

/// Serves one distribution connection on its channel's event loop: the handshake, then the
/// link.
///
/// Once connected, Brain's messages go to one of ``laneCount`` lanes chosen by key:
/// messages on one key are carried out in the order they arrived, messages on different keys
/// (and on different links) concurrently.
/// - A message the store can answer at once (a cache hit, a write acknowledged from memory)
///   is carried out right there, on the event loop, with no task and no thread switch,
///   unless its lane is waiting.
/// - One that must wait (a backend read, a persist) runs in a task on the same event loop;
///   the later messages of its lane wait in the lane's queue until it is done.
/// - The replies of one socket read are flushed every ``flushThreshold`` bytes and at its end.
///
/// Memory stays bounded whatever the peer does: once the messages waiting in lanes hold
/// ``Shared/maxPendingBytes`` or more, or the replies waiting for the socket pass the
/// channel's high water mark, the handler holds back the next socket read, so a link holds
/// at most that much plus one read of messages. A peer that floods the link or reads none of
/// its replies slows down only itself.
final class ErlangConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = DistributionFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What every connection of a transport shares.
    struct Shared: Sendable {
        var executor: ClientMessageExecutor
        var counters: CounterSet
        var policy: SignalPolicy
        var links: LinkRegistry
        var handshake: DistributionHandshake.Configuration
        var setupTime: Duration
        var tickTime: Duration
        var maxPendingBytes: Int
        var logger: Logger
        var malformedLog: LogLimiter
        var failureLog: LogLimiter
        var droppedLog: LogLimiter
        var refusedLog: LogLimiter
    }

    /// Fired into a connection's pipeline on graceful shutdown: read nothing more, carry out
    /// what was read, send its replies, then close.
    struct StopReading: Sendable {}

    /// Lanes per link: messages whose keys hash to different lanes run concurrently.
    static let laneCount = 8
    /// Replies are sent at least this often within one read: a read can hold hundreds of
    /// messages, and the first replies should not wait for the last message.
    static let flushThreshold = 2 * 1024
    static let netKernel: Atom = "net_kernel"

    /// A message read from the link, waiting in its lane.
    private struct Pending {
        var message: ClientMessage
        /// What it counts against ``Shared/maxPendingBytes``.
        var cost: Int
    }

    private struct Lane {
        var queue = CircularBuffer<Pending>()
        /// A message of this lane runs in a task; the queue waits for it.
        var busy = false
    }

    private enum Phase {
        case handshaking(DistributionHandshake)
        case connected(Link)
        case closed
    }

    private let shared: Shared
    private var phase: Phase
    private var lanes = [Lane](repeating: Lane(), count: ErlangConnectionHandler.laneCount)
    /// Bytes of the messages waiting in lanes or running in tasks.
    private var pendingBytes = 0
    private let output: ReplyOutput
    /// A read was asked for while the handler held reads back.
    private var readHeld = false
    /// Graceful shutdown: read nothing more, close once every lane is done.
    private var inputEnded = false
    /// Why the link ended, for the `erlang link down` line.
    private var endReason = "closed"
    private var stepTimer: Scheduled<Void>?
    private var ticking: RepeatedTask?
    private var ticker = LinkTicker()
    private var remote = "?"
    /// The connection of a connected link has closed.
    private var linkDown = false
    /// Where each reply frame is encoded, reused so that a reply allocates no frame.
    private var replyFrame: [UInt8] = []

    private let receiveCounter: ReceiveCounter

    /// - Parameter receiveCounter: the handler ahead of the frame decoder that counts the
    ///   connection's socket reads: any byte received, even of an unfinished frame, shows
    ///   the peer is alive.
    init(shared: Shared, receiveCounter: ReceiveCounter, allocator: ByteBufferAllocator) {
        self.shared = shared
        self.receiveCounter = receiveCounter
        self.phase = .handshaking(
            DistributionHandshake(configuration: shared.handshake, challenge: UInt32.random(in: 0...UInt32.max)))
        self.output = ReplyOutput(allocator: allocator)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { started(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        started(context)
        context.fireChannelActive()
    }

    private func started(_ context: ChannelHandlerContext) {
        guard stepTimer == nil, case .handshaking = phase else { return }
        remote = context.channel.remoteAddress?.description ?? "?"
        armStepTimer(context)
    }

    /// Each handshake step must arrive within the setup time.
    private func armStepTimer(_ context: ChannelHandlerContext) {
        stepTimer?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        stepTimer = context.eventLoop.scheduleTask(in: TimeAmount(shared.setupTime)) {
            let (handler, context) = bound.value
            guard case .handshaking = handler.phase else { return }
            let error = ErlangTransportError(.handshakeTimeout, "a handshake step took more than \(handler.shared.setupTime)")
            handler.shared.refusedLog.log("erlang handshake from \(handler.remote) refused: \(error)")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stepTimer?.cancel()
        ticking?.cancel()
        switch phase {
        case .connected(let link):
            shared.links.remove(link)
            shared.logger.info("erlang link down: \(link.peer.name) (\(endReason))")
            // Messages already read are still carried out, and their replies to processes
            // on other nodes sent; only the replies to this one are lost.
            linkDown = true
        case .handshaking:
            phase = .closed
        case .closed:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch phase {
        case .handshaking:
            shared.refusedLog.log("erlang handshake from \(remote) failed: \(error)")
        case .connected(let link):
            if let error = error as? ErlangTransportError {
                endReason = error.code.rawValue
                shared.logger.warning("erlang link to \(link.peer.name) closed: \(error)")
            } else {
                endReason = "\(error)"
                shared.logger.debug("erlang connection failed", metadata: ["peer": "\(remote)", "error": "\(error)"])
            }
        case .closed:
            break
        }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is StopReading {
            switch phase {
            case .handshaking:
                context.close(promise: nil)
            case .connected:
                inputEnded = true
                closeIfDone(context)
            case .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch phase {
        case .handshaking(var machine):
            guard case .handshake(let message) = frame else { return }
            phase = .closed  // while the machine is out of the enum
            let directives = machine.receive(Array(message.readableBytesView))
            phase = .handshaking(machine)
            // Handshake messages leave with one flush after the loop: the last one, the
            // acknowledgement, only once the link is registered, so that a reply to the peer
            // sent by another link right after it can find the link.
            defer { context.flush() }
            for directive in directives {
                switch directive {
                case .send(let bytes):
                    context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                case .close(let error):
                    shared.refusedLog.log("erlang handshake from \(remote) refused: \(error)")
                    phase = .closed
                    // The status message, if any, goes out before the connection closes.
                    context.flush()
                    context.close(promise: nil)
                    return
                case .established(let peer):
                    established(peer, context)
                    return
                }
            }
            armStepTimer(context)
        case .connected(let link):
            guard !inputEnded, !linkDown, case .data(let body) = frame else { return }
            do {
                try receive(body, on: link, context)
            } catch {
                endReason = error.code.rawValue
                shared.logger.warning("erlang link to \(link.peer.name) closed: \(error)")
                output.flush(context)
                context.close(promise: nil)
            }
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        output.flush(context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { releaseRead(context) }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if mustHoldReads(context) {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func mustHoldReads(_ context: ChannelHandlerContext) -> Bool {
        inputEnded || pendingBytes >= shared.maxPendingBytes || !context.channel.isWritable
    }

    private func releaseRead(_ context: ChannelHandlerContext) {
        guard readHeld, !mustHoldReads(context) else { return }
        readHeld = false
        context.read()
    }

    // MARK: The link

    private func established(_ peer: DistributionHandshake.Peer, _ context: ChannelHandlerContext) {
        stepTimer?.cancel()
        stepTimer = nil
        let link = Link(peer: peer, channel: context.channel)
        phase = .connected(link)
        if let retired = shared.links.register(link) {
            shared.logger.notice("erlang node \(peer.name) connected again; its previous link is closed")
            retired.close()
        }
        shared.logger.info(
            "erlang link up: \(peer.name)\(peer.isHidden ? " (hidden)" : "")",
            metadata: ["peer": "\(remote)", "flags": "\(peer.negotiatedFlags)"])
        ticker = LinkTicker(received: receiveCounter.reads, framesWritten: link.framesWritten)
        let interval = TimeAmount(shared.tickTime / 4)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ticking = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = bound.value
            handler.tick(link, context)
        }
    }

    /// Sends ticks and drops the link when the peer has gone silent (see ``LinkTicker``).
    private func tick(_ link: Link, _ context: ChannelHandlerContext) {
        guard !linkDown else { return }
        // A link holding back reads for its own lanes is busy, not facing silence, unless it
        // holds them because the peer reads none of its replies: then the peer is as good as
        // gone.
        let readerBusy = readHeld && context.channel.isWritable
        let decision = ticker.check(
            received: receiveCounter.reads, framesWritten: link.framesWritten, readerBusy: readerBusy)
        if decision.close {
            let error = ErlangTransportError(
                .linkSilent, "nothing received for more than the tick time, \(shared.tickTime)")
            endReason = error.code.rawValue
            shared.logger.warning("erlang link to \(link.peer.name) closed: \(error)")
            context.close(promise: nil)
            return
        }
        if decision.sendTick && context.channel.isWritable {
            // Never wait here: a peer that reads nothing must not stop the silence check.
            // Its socket holds unread frames anyway, which tell it we are alive.
            append(OutgoingFrame.tick, on: link)
            output.flush(context)
        }
    }

    /// Handles one frame of the connected link.
    ///
    /// - Throws: ``ErlangTransportError`` (`malformed_frame`) when the frame is not a
    ///   distribution message; the link is then closed.
    private func receive(_ body: ByteBuffer, on link: Link, _ context: ChannelHandlerContext) throws(ErlangTransportError) {
        let limits = shared.executor.limits
        let message = try body.withUnsafeReadableBytes { bytes throws(ErlangTransportError) in
            try DistributionMessage.decode(bytes, limits: limits)
        }
        switch shared.policy.action(for: message.control) {
        case .ignore:
            return
        case .answer(let frame):
            append(frame, on: link)
        case .deliver(let name, let from):
            let term: Term
            switch message.payload {
            case .success(let decoded)?:
                term = decoded
            case .failure(let error)?:
                shared.malformedLog.log("erlang: ignored a message from \(from.node.name) that does not decode: \(error)")
                return
            case nil:
                return
            }
            if name == Self.netKernel {
                if let reply = SignalPolicy.netKernelReply(to: term) {
                    deliver(reply.message, to: reply.to, on: link)
                }
                return
            }
            switch ClientMessageParser.parse(term) {
            case .success(let client):
                shared.counters.add(client.commandName.rawValue)
                let lane = Self.lane(for: client.key)
                if !lanes[lane].busy, let outcome = shared.executor.executeNow(client) {
                    finish(outcome, on: link)
                } else {
                    let cost = body.readableBytes + 64
                    pendingBytes += cost
                    lanes[lane].queue.append(Pending(message: client, cost: cost))
                    if !lanes[lane].busy { startTask(lane, context) }
                }
                if output.buffer.readableBytes >= Self.flushThreshold { output.flush(context) }
            case .failure(let malformed):
                if let command = malformed.command { shared.counters.add(command.rawValue) }
                shared.malformedLog.log("erlang: ignored a malformed message from \(from.node.name): \(malformed.reason)")
                if let pid = malformed.replyTo, let reply = malformed.replyMessage {
                    deliver(reply, to: pid, on: link)
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

    /// Carries out the messages queued in an idle lane until one must wait, and starts its
    /// task.
    private func runLane(_ lane: Int, _ context: ChannelHandlerContext) {
        while let pending = lanes[lane].queue.first {
            guard let outcome = shared.executor.executeNow(pending.message) else {
                startTask(lane, context)
                return
            }
            lanes[lane].queue.removeFirst()
            pendingBytes -= pending.cost
            finishOnLink(outcome)
        }
    }

    /// Runs the first message of an idle lane, one the store cannot answer at once, in a
    /// task on this event loop; the lane resumes when it is done.
    private func startTask(_ lane: Int, _ context: ChannelHandlerContext) {
        guard let pending = lanes[lane].queue.first else { return }
        lanes[lane].busy = true
        let loop = context.eventLoop
        let resume = NIOLoopBound((self, context), eventLoop: loop)
        let executor = shared.executor
        Task(executorPreference: EventLoopTaskExecutor(loop)) {
            let outcome = await executor.execute(pending.message)
            loop.execute {
                let (handler, context) = resume.value
                handler.laneDone(lane, outcome, context)
            }
        }
    }

    private func laneDone(_ lane: Int, _ outcome: ClientMessageExecutor.Outcome, _ context: ChannelHandlerContext) {
        let pending = lanes[lane].queue.removeFirst()
        pendingBytes -= pending.cost
        lanes[lane].busy = false
        finishOnLink(outcome)
        runLane(lane, context)
        guard context.channel.isActive else { return }
        output.flush(context)
        releaseRead(context)
        closeIfDone(context)
    }

    /// After graceful shutdown, closes the link once every message read is carried out.
    private func closeIfDone(_ context: ChannelHandlerContext) {
        // A lane holds queued messages only behind a running task: no busy lane, nothing left.
        guard inputEnded, !lanes.contains(where: \.busy), context.channel.isActive else { return }
        output.flush(context)
        context.close(promise: nil)
    }

    // MARK: Replies

    private func finishOnLink(_ outcome: ClientMessageExecutor.Outcome) {
        guard case .connected(let link) = phase else { return }
        finish(outcome, on: link)
    }

    private func finish(_ outcome: ClientMessageExecutor.Outcome, on link: Link) {
        switch outcome {
        case .reply(let pid, let reply):
            deliver(reply, to: pid, on: link)
        case .failed(let reason):
            shared.failureLog.log("erlang: \(reason) (from \(link.peer.name))")
        case .done:
            break
        }
    }

    /// Sends `message` to `pid` over the link to its node. Another node's link is written
    /// only if it can take the frame now, so that one slow peer never stalls another. A
    /// reply to a node with no link is dropped: Brain never dials out (C nodes do not even
    /// listen).
    private func deliver(_ message: Term, to pid: Pid, on link: Link) {
        replyFrame.removeAll(keepingCapacity: true)
        OutgoingFrame.appendSend(to: pid, message: message, into: &replyFrame)
        let node = pid.node.name
        if node == link.peer.name {
            if !linkDown { append(replyFrame, on: link) }
            return
        }
        guard let target = shared.links.link(named: node) else {
            shared.droppedLog.log("erlang: a reply to a process on \(node) was dropped: that node has no link to this one")
            return
        }
        if !target.writeIfWritable(replyFrame) {
            shared.droppedLog.log("erlang: a reply to a process on \(node) was dropped: its link is not reading")
        }
    }

    /// Adds a frame to the replies of this link.
    private func append(_ frame: [UInt8], on link: Link) {
        link.noteWritten()
        output.buffer.writeBytes(frame)
    }
}

/// Counts the socket reads of a connection, ahead of any framing: what tells a link its peer
/// is alive, even while a large frame is still arriving.
final class ReceiveCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Socket reads so far.
    private(set) var reads: UInt64 = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads &+= 1
        context.fireChannelRead(data)
    }
}
