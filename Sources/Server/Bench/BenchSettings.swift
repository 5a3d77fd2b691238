/// A validated description of a `brain bench` run: everything the load generator needs,
/// checked once, so the run itself has no option errors left to find.
struct BenchSettings: Equatable, Sendable {
    /// What the run measures.
    enum Workload: Equatable, Sendable {
        /// The get/set mix, stopping as `stop` says.
        case mix(ratio: Ratio, stop: Stop)
        /// The session replay.
        case sessions(SessionPlan)
    }

    /// When the mix stops.
    enum Stop: Equatable, Sendable {
        /// After this long, in nanoseconds.
        case duration(UInt64)
        /// After this many requests in all.
        case requests(Int)
    }

    /// The share of `get`s and `set`s: `gets:sets`.
    struct Ratio: Equatable, Sendable, CustomStringConvertible {
        /// Parts of `get`.
        var gets: Int
        /// Parts of `set`.
        var sets: Int
        var description: String { "\(gets):\(sets)" }
    }

    /// The server's host name or address.
    var host: String
    /// The server's port.
    var port: Int
    /// The protocol spoken.
    var wire: WireProtocol
    /// `auth <secret>` is sent first on each connection when set (Brain only).
    var secret: String?
    /// Connections opened.
    var connections: Int
    /// Requests in flight per connection at most.
    var pipeline: Int
    /// Load-generator threads; connection `c` belongs to thread `c mod threads`.
    var threads: Int
    /// Keys `0 ..< keys` are used (the users, for sessions).
    var keys: Int
    /// Value lengths, drawn uniformly.
    var valueSizes: ClosedRange<Int>
    /// What values look like.
    var valueKind: ValueKind
    /// What is measured.
    var workload: Workload
    /// Whether every key is set once before measuring.
    var warmup: Bool
    /// The seed of every random choice.
    var seed: UInt64
    /// The run fails when requests are in flight and no reply comes for this long (ns).
    var stallLimit: UInt64

    // MARK: - Parsing option values (pure)

    /// Parses a ratio `G:S` of non-negative whole numbers, not both zero.
    static func parseRatio(_ text: String) throws(BenchError) -> Ratio {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let gets = Int(parts[0]), let sets = Int(parts[1]), gets >= 0, sets >= 0,
            gets + sets > 0, gets <= 1_000_000, sets <= 1_000_000
        else {
            throw BenchError(.invalidOption, "--ratio '\(text)' is not a get:set ratio such as 9:1, 1:0 or 0:1")
        }
        return Ratio(gets: gets, sets: sets)
    }

    /// Parses a value size: one size (`100`, `2kb`) or a range `MIN-MAX` (`1kb-2kb`), each
    /// from 1 byte to 1,000,000 bytes (Brain's largest value).
    static func parseValueSize(_ text: String) throws(BenchError) -> ClosedRange<Int> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        let sizes = parts.map { ConfigurationUnits.parseSize(String($0)) }
        guard (1...2).contains(parts.count), let low = sizes.first ?? nil, let high = sizes.last ?? nil,
            low >= 1, low <= high, high <= maximumValueSize
        else {
            throw BenchError(
                .invalidOption,
                "--value-size '\(text)' is not a size (such as 100 or 2kb) or a range of sizes (such as 1kb-2kb) from 1 to \(maximumValueSize) bytes")
        }
        return low...high
    }

    /// Parses a duration such as `10s`, `500ms` or `2m`.
    static func parseDuration(_ text: String, option: String) throws(BenchError) -> UInt64 {
        guard let duration = ConfigurationUnits.parseDuration(text) else {
            throw BenchError(.invalidOption, "\(option) '\(text)' is not a duration such as 10s, 500ms or 2m")
        }
        return UInt64(ConfigurationUnits.milliseconds(duration)) * 1_000_000
    }

    /// The largest value Brain accepts, and so the largest `brain bench` sends.
    static let maximumValueSize = 1_000_000
    /// The most connections one run opens.
    static let maximumConnections = 10_000
    /// The deepest pipeline.
    static let maximumPipeline = 4096
    /// The most keys (or users) of a run: requests carry key numbers in 32 bits.
    static let maximumKeys = Int(Int32.max)
}

