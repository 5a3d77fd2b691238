#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The engine's notion of time, in milliseconds on a monotonic clock. Injected so that entry
/// life, coalescing and backoff are tested without sleeping.
public protocol EngineClock: Sendable {
    /// Milliseconds since an arbitrary fixed origin; never goes backwards.
    func nowMilliseconds() -> Int64
}

/// The system's monotonic clock.
public struct MonotonicClock: EngineClock {
    public init() {}

    public func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told to, for tests.
public final class ManualClock: EngineClock {
    private let now: Atomic<Int64>

    public init(start: Int64 = 1_000_000) {
        now = Atomic(start)
    }

    public func nowMilliseconds() -> Int64 { now.load(ordering: .acquiring) }

    /// Moves the clock forward by `milliseconds`.
    public func advance(by milliseconds: Int64) {
        now.wrappingAdd(milliseconds, ordering: .releasing)
    }
}
