#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thread of the load generator: an event loop over its share of the connections,
/// driving a ``BenchWorkload``.
///
/// Per wake-up it reads every readable socket once, parses every whole reply, lets the
/// workload fill the room the replies made, and writes each connection's new requests in
/// one `send`. Requests are stamped just before that `send` and replies when the poll
/// returns, so a latency is the time the request spent in the kernels and the server, plus
/// at most one loop iteration of this thread.
///
/// It waits with `poll`: a thread drives tens to hundreds of sockets, which `poll` scans in
/// well under the time of one request.
struct LoadWorker<Workload: BenchWorkload> {
    private var workload: Workload
    private var connections: [BenchConnection]
    private var watched: [pollfd]
    private let parser: ReplyParser
    private let pipeline: Int
    private let stallLimit: UInt64
    private var inFlight = 0

    /// A worker over the connected, non-blocking sockets `sockets`, numbered `indexes` in the
    /// run, allowing `pipeline` requests in flight per connection. The run stops with
    /// `stalled` when requests are in flight and no reply comes for `stallLimit` ns.
    init(workload: Workload, sockets: [CInt], indexes: [Int], wire: WireProtocol, pipeline: Int, stallLimit: UInt64) {
        self.workload = workload
        self.connections = zip(sockets, indexes).map { BenchConnection(fd: $0, index: $1, pipeline: pipeline) }
        self.watched = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        self.parser = ReplyParser(wire: wire)
        self.pipeline = pipeline
        self.stallLimit = stallLimit
    }

    /// Runs until the workload is finished and every request has its reply, then returns what
    /// the workload measured. The sockets stay open.
    mutating func run() throws(BenchError) -> BenchStats {
        for local in connections.indices { try fill(local) }
        var due: [Int] = []
        var lastProgress = BenchClock.now()
        while true {
            let now = BenchClock.now()
            let finished = workload.isFinished(now: now)
            if finished && inFlight == 0 { break }
            if inFlight > 0, now - lastProgress > stallLimit {
                throw BenchError(.stalled, "no reply for \(stallLimit / 1_000_000) ms with \(inFlight) requests in flight")
            }
            // Wake for the next scheduled request, and at least every 100 ms to check for stalls.
            var timeout: CInt = 100
            if !finished, let next = workload.nextDue {
                timeout = next <= now ? 0 : CInt(min(100, (next - now + 999_999) / 1_000_000))
            }
            let ready = watched.withUnsafeMutableBufferPointer { buffer in
                poll(buffer.baseAddress, nfds_t(buffer.count), timeout)
            }
            if ready < 0 {
                if errno == EINTR { continue }
                throw BenchError(.connectionLost, "poll failed: \(String(cString: strerror(errno)))")
            }
            let receivedAt = BenchClock.now()
            var left = Int(ready)
            var local = 0
            while left > 0, local < watched.count {
                let events = CInt(watched[local].revents)
                if events != 0 {
                    left -= 1
                    watched[local].revents = 0
                    if events & CInt(POLLIN | POLLERR | POLLHUP) != 0 {
                        if try receive(local, at: receivedAt) { lastProgress = receivedAt }
                        try fill(local)
                    } else if events & CInt(POLLOUT) != 0 {
                        try send(local)
                    }
                }
                local += 1
            }
            due.removeAll(keepingCapacity: true)
            workload.takeDue(now: BenchClock.now(), into: &due)
            for local in due { try fill(local) }
        }
        return workload.stats
    }

    /// Reads connection `local` and hands every whole reply to the workload.
    /// - Returns: whether at least one reply arrived.
    private mutating func receive(_ local: Int, at receivedAt: UInt64) throws(BenchError) -> Bool {
        guard try connections[local].receive() else { return false }
        var replies = 0
        while connections[local].inboxStart < connections[local].inboxEnd {
            let start = connections[local].inboxStart
            let end = connections[local].inboxEnd
            let outcome = connections[local].inbox.withUnsafeBytes { buffer in
                parser.parse(UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
            }
            switch outcome {
            case .incomplete:
                return replies > 0
            case .malformed(let detail):
                throw BenchError(.protocolViolation, "connection \(connections[local].index): \(detail)")
            case .reply(let reply, let consumed):
                connections[local].inboxStart += consumed
                guard let request = connections[local].pending.pop() else {
                    throw BenchError(.protocolViolation, "connection \(connections[local].index): a reply came with no request in flight")
                }
                inFlight -= 1
                replies += 1
                workload.complete(request, reply: reply, local: local, now: receivedAt)
            }
        }
        return replies > 0
    }

    /// Lets the workload fill connection `local`'s free pipeline slots, then sends.
    private mutating func fill(_ local: Int) throws(BenchError) {
        let room = pipeline - connections[local].pending.count
        if room > 0 {
            let before = connections[local].pending.count
            workload.issue(local: local, connection: &connections[local], room: room, now: BenchClock.now())
            inFlight += connections[local].pending.count - before
        }
        try send(local)
    }

    /// Sends what connection `local` has queued; watches for writability while the kernel's
    /// buffer is full.
    private mutating func send(_ local: Int) throws(BenchError) {
        let done = try connections[local].flush()
        if done == connections[local].watchesWritable {
            watched[local].events = Int16(done ? POLLIN : POLLIN | POLLOUT)
            connections[local].watchesWritable = !done
        }
    }
}
