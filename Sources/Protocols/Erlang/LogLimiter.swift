import Engine
import Logging
import Synchronization

/// Logs at most one line per interval for one kind of problem, then says how many were
/// suppressed, so that a peer sending garbage cannot flood the log.
final class LogLimiter: Sendable {
    private let logger: Logger
    private let level: Logger.Level
    private let interval: Int64
    private let clock: any EngineClock
    private let window = Mutex<(start: Int64, suppressed: Int)>((Int64.min, 0))

    init(logger: Logger, level: Logger.Level, intervalMilliseconds: Int64 = 1000, clock: any EngineClock = MonotonicClock()) {
        self.logger = logger
        self.level = level
        self.interval = intervalMilliseconds
        self.clock = clock
    }

    /// Logs `message` unless a line was logged within the interval.
    func log(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        let now = clock.nowMilliseconds()
        let suppressed: Int? = window.withLock { window in
            if window.start != Int64.min && now - window.start < interval {
                window.suppressed += 1
                return nil
            }
            let count = window.suppressed
            window = (now, 0)
            return count
        }
        guard let suppressed else { return }
        let text = suppressed > 0 ? "\(message()) (\(suppressed) similar suppressed)" : message()
        logger.log(level: level, "\(text)", metadata: metadata())
    }
}
