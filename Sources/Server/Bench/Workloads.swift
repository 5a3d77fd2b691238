/// What a load-generator thread sends and how it reacts to replies. The event loop
/// (``LoadWorker``) owns the sockets; a workload decides the requests and keeps the
/// statistics. Each thread has its own workload value, over its own connections.
protocol BenchWorkload: Sendable {
    /// Appends to `connection.outbox` at most `room` requests that may leave now, pushing each
    /// onto `connection.pending` with `sentAt` = `now`. `local` is the connection's position
    /// among this thread's connections.
    mutating func issue(local: Int, connection: inout BenchConnection, room: Int, now: UInt64)

    /// Handles the reply to `request`, received at `now` on connection `local`.
    mutating func complete(_ request: PendingRequest, reply: BenchReply, local: Int, now: UInt64)

    /// Appends to `connections` the local connections that have requests due by `now` for
    /// reasons other than a reply (a schedule).
    mutating func takeDue(now: UInt64, into connections: inout [Int])

    /// When the earliest scheduled request is due, or `nil` when nothing is scheduled.
    var nextDue: UInt64? { get }

    /// Whether the workload will issue no more requests.
    func isFinished(now: UInt64) -> Bool

    /// What was measured so far.
    var stats: BenchStats { get }
}

/// When a mix stops issuing requests.
enum MixStop: Equatable, Sendable {
    /// At this ``BenchClock`` time.
    case deadline(UInt64)
    /// After this many requests from this thread.
    case requests(Int)
}

/// The get/set mix: each connection picks, from its own random stream, a key uniformly among
/// `keys` and an operation by the get:set ratio; a `set` picks a value of the pool. Closed
/// loop: a reply makes room for the next request of its connection.
struct MixWorkload: BenchWorkload {
    private let encoder: RequestEncoder
    private let keyCount: Int
    private let gets: Int
    private let ratioTotal: Int
    private let stop: MixStop
    private var randoms: [BenchRandom]
    private var issued = 0
    private(set) var stats = BenchStats()

    /// A mix over the connections numbered `connectionIndexes` (their random streams).
    init(encoder: RequestEncoder, keys: Int, ratio: (gets: Int, sets: Int), stop: MixStop, seed: UInt64, connectionIndexes: [Int]) {
        self.encoder = encoder
        self.keyCount = keys
        self.gets = ratio.gets
        self.ratioTotal = ratio.gets + ratio.sets
        self.stop = stop
        self.randoms = connectionIndexes.map { BenchRandom(seed: seed, stream: UInt64($0)) }
    }

    mutating func issue(local: Int, connection: inout BenchConnection, room: Int, now: UInt64) {
        var random = randoms[local]
        defer { randoms[local] = random }
        for _ in 0..<room {
            if isFinished(now: now) { return }
            let key = random.below(keyCount)
            if random.below(ratioTotal) < gets {
                encoder.appendGet(key: key, to: &connection.outbox)
                connection.pending.push(PendingRequest(sentAt: now, kind: .get, subject: Int32(truncatingIfNeeded: key)))
            } else {
                encoder.appendSet(key: key, value: random.below(encoder.values.count), to: &connection.outbox)
                connection.pending.push(PendingRequest(sentAt: now, kind: .set, subject: Int32(truncatingIfNeeded: key)))
            }
            issued += 1
        }
    }

    mutating func complete(_ request: PendingRequest, reply: BenchReply, local: Int, now: UInt64) {
        stats.record(reply, kind: request.kind, sentAt: request.sentAt, receivedAt: now)
    }

    func takeDue(now: UInt64, into connections: inout [Int]) {}

    var nextDue: UInt64? {
        if case .deadline(let deadline) = stop { return deadline }
        return nil
    }

    func isFinished(now: UInt64) -> Bool {
        switch stop {
        case .deadline(let deadline): now >= deadline
        case .requests(let limit): issued >= limit
        }
    }
}

/// The warm-up: every key of `0 ..< keys` set once, connection number `c` (of `connections`)
/// setting keys `c`, `c + connections`, ..., key `k` getting value `k mod poolCount`.
struct PreloadWorkload: BenchWorkload {
    private let encoder: RequestEncoder
    private let keyCount: Int
    private let stride: Int
    private var nextKeys: [Int]
    private var unfinished: Int
    private(set) var stats = BenchStats()

    /// The warm-up share of the connections numbered `connectionIndexes` out of `connections`.
    init(encoder: RequestEncoder, keys: Int, connections: Int, connectionIndexes: [Int]) {
        self.encoder = encoder
        self.keyCount = keys
        self.stride = connections
        self.nextKeys = connectionIndexes
        self.unfinished = connectionIndexes.filter { $0 < keys }.count
    }

    mutating func issue(local: Int, connection: inout BenchConnection, room: Int, now: UInt64) {
        for _ in 0..<room {
            let key = nextKeys[local]
            guard key < keyCount else { return }
            encoder.appendSet(key: key, value: key % encoder.values.count, to: &connection.outbox)
            connection.pending.push(PendingRequest(sentAt: now, kind: .set, subject: Int32(truncatingIfNeeded: key)))
            nextKeys[local] = key + stride
            if key + stride >= keyCount { unfinished -= 1 }
        }
    }

    mutating func complete(_ request: PendingRequest, reply: BenchReply, local: Int, now: UInt64) {
        stats.record(reply, kind: request.kind, sentAt: request.sentAt, receivedAt: now)
    }

    func takeDue(now: UInt64, into connections: inout [Int]) {}

    var nextDue: UInt64? { nil }

    func isFinished(now: UInt64) -> Bool {
        unfinished == 0
    }
}
