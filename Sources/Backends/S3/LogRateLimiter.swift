/// Lets at most one log line through per interval and counts the rest, so a backend that is
/// down does not flood the log with one line per request. Pure: the time is an argument.
struct LogRateLimiter: Sendable {
    /// The shortest time between two lines, in nanoseconds.
    let intervalNanoseconds: UInt64
    private var lastLine: UInt64?
    private var suppressed = 0

    /// A limiter of one line per `intervalNanoseconds`.
    init(intervalNanoseconds: UInt64 = 1_000_000_000) {
        self.intervalNanoseconds = intervalNanoseconds
    }

    /// Whether a line may be logged at `now` (monotonic nanoseconds). When it may, the result
    /// is how many lines were suppressed since the last one logged, for that line to report;
    /// `nil` means suppress this line.
    mutating func admit(now: UInt64) -> Int? {
        if let lastLine, now &- lastLine < intervalNanoseconds {
            suppressed += 1
            return nil
        }
        lastLine = now
        defer { suppressed = 0 }
        return suppressed
    }
}
