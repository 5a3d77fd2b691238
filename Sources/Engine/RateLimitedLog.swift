import Logging
import Synchronization

/// Logs at most one line per interval, then how many were suppressed, so a failing backend
/// cannot flood the log.
final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let interval: Int64
    private let clock: any EngineClock
    private let window = Mutex<(start: Int64, suppressed: Int)>((Int64.min, 0))

    init(logger: Logger, interval: Int64, clock: any EngineClock) {
        self.logger = logger
        self.interval = interval
        self.clock = clock
    }

    func error(_ message: @autoclosure () -> String) {
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
        if suppressed > 0 {
            logger.error("\(message()) (\(suppressed) similar errors suppressed)")
        } else {
            logger.error("\(message())")
        }
    }
}
