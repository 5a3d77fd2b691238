import Histogram

/// What a request was, for counting and for latency.
enum OpKind: Int, CaseIterable, Sendable {
    /// A `get` of the mix.
    case get
    /// A `set`, of the mix, of the warm-up or of a session.
    case set
    /// The first `get` of a session's user: the record is not in memory yet.
    case coldGet
    /// A later `get` of a session's user.
    case warmGet

    /// The name in reports and in JSON.
    var name: String {
        switch self {
        case .get: "get"
        case .set: "set"
        case .coldGet: "cold_get"
        case .warmGet: "warm_get"
        }
    }
}

/// What a phase of a run measured: latencies by kind of request, counts, hits, errors.
///
/// Each load-generator thread keeps its own and the run merges them: recording takes no lock.
/// A reply that is an error is counted under its code and kept out of the latencies, so
/// that fast refusals cannot flatter them.
struct BenchStats: Sendable {
    /// Latency of successful replies by ``OpKind`` (raw value), in nanoseconds.
    private(set) var latencies: [Histogram<UInt64>]
    /// How late a session's requests left against their schedule, in nanoseconds.
    private(set) var lag: Histogram<UInt64>
    /// `get` replies that carried a value.
    private(set) var hits = 0
    /// `get` replies that found nothing.
    private(set) var misses = 0
    /// Error replies, by code.
    private(set) var errors: [String: Int] = [:]
    /// When the last reply of the phase arrived (``BenchClock`` ns), 0 before any.
    private(set) var lastReplyAt: UInt64 = 0

    /// The longest latency a histogram tracks; longer ones are recorded as this.
    static let highestTrackable: UInt64 = 3_600_000_000_000

    /// Empty statistics.
    init() {
        let empty = Histogram<UInt64>(highestTrackableValue: Self.highestTrackable, numberOfSignificantValueDigits: .three)
        latencies = Array(repeating: empty, count: OpKind.allCases.count)
        lag = empty
    }

    /// Records the reply to a request of `kind` sent at `sentAt` and received at `receivedAt`.
    mutating func record(_ reply: BenchReply, kind: OpKind, sentAt: UInt64, receivedAt: UInt64) {
        lastReplyAt = max(lastReplyAt, receivedAt)
        switch reply {
        case .error(let code):
            errors[code, default: 0] += 1
            return
        case .value: hits += 1
        case .missing: misses += 1
        case .stored: break
        }
        let latency = receivedAt > sentAt ? receivedAt - sentAt : 0
        latencies[kind.rawValue].record(min(latency, Self.highestTrackable))
    }

    /// Records that a scheduled request left `nanoseconds` after its due time.
    mutating func recordLag(_ nanoseconds: UInt64) {
        lag.record(min(nanoseconds, Self.highestTrackable))
    }

    /// Adds everything `other` recorded.
    mutating func merge(_ other: BenchStats) {
        for index in latencies.indices { latencies[index].add(other.latencies[index]) }
        lag.add(other.lag)
        hits += other.hits
        misses += other.misses
        errors.merge(other.errors, uniquingKeysWith: +)
        lastReplyAt = max(lastReplyAt, other.lastReplyAt)
    }

    /// Successful replies of `kind`.
    func count(_ kind: OpKind) -> Int { Int(latencies[kind.rawValue].totalCount) }

    /// Successful replies of every kind.
    var successes: Int { latencies.reduce(0) { $0 + Int($1.totalCount) } }

    /// Error replies of every code.
    var errorCount: Int { errors.values.reduce(0, +) }

    /// The latency histogram of `kind`.
    func latency(_ kind: OpKind) -> Histogram<UInt64> { latencies[kind.rawValue] }

    /// Every kind's latencies together.
    var allLatencies: Histogram<UInt64> {
        var all = latencies[0]
        for other in latencies.dropFirst() { all.add(other) }
        return all
    }
}
