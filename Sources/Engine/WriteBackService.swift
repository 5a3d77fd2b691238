import Logging
import ServiceLifecycle
import Synchronization

/// Writes dirty entries back to the backend, and runs the idle life of entries.
///
/// - Coalescing: an entry is written `flush_delay` after its last change (or `max_dirty_age`
///   after it became dirty), and only its latest version is written.
/// - Per-key order: one write per key is in flight at a time; a change made meanwhile is
///   written after it.
/// - Concurrency is bounded (`writeBackConcurrency` writes in flight); while entries are
///   due and every slot is taken, the service checks for free slots every 2 ms, so the
///   write-back runs as fast as the backend acknowledges. Failures are retried with
///   exponential backoff and jitter.
/// - On graceful shutdown (after the transports have stopped) it writes every dirty entry
///   back, for at most `shutdown_timeout`; ``drained`` then says whether it succeeded.
public final class WriteBackService: Service {
    private let store: CacheStore
    private let logger: Logger
    private let tick: Duration
    private let inFlight = Atomic<Int>(0)
    private let drainedFlag = Atomic<Bool>(false)

    public init(store: CacheStore, logger: Logger) {
        self.store = store
        self.logger = logger
        let flush = store.configuration.flushDelay.milliseconds
        tick = .milliseconds(max(5, min(50, flush / 4)))
    }

    /// Whether the last graceful shutdown wrote every dirty entry back.
    public var drained: Bool { drainedFlag.load(ordering: .acquiring) }

    public func run() async throws {
        let stopping = Atomic<Bool>(false)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                await self.loop(group: &group, force: false) { _ in stopping.load(ordering: .relaxed) }
                self.logger.info("write-back: draining \(self.store.dirtyCount) dirty entries before exit")
                let deadline = self.store.clock.nowMilliseconds() + self.store.configuration.shutdownTimeout.milliseconds
                await self.loop(group: &group, force: true) { quiet in
                    // Counting the dirty entries scans every shard: only once nothing is left
                    // to take or in flight.
                    (quiet && self.store.dirtyCount == 0) || self.store.clock.nowMilliseconds() >= deadline
                }
            }
            let remaining = self.store.dirtyCount
            self.drainedFlag.store(remaining == 0, ordering: .releasing)
            if remaining == 0 {
                self.logger.info("write-back: every dirty entry is written back")
            } else {
                self.logger.error("write-back: \(remaining) dirty entries could not be written back before shutdown_timeout")
            }
        } onGracefulShutdown: {
            stopping.store(true, ordering: .relaxed)
        }
    }

    /// Takes due jobs and runs them, until `done` says so; `done` is told whether the last
    /// round found nothing to take and nothing in flight. Between rounds it sleeps one tick,
    /// or 2 ms while there is a backlog; once a second it sweeps idle entries, samples the
    /// command rate, and reports progress when draining.
    private func loop(
        group: inout DiscardingTaskGroup, force: Bool, done: (_ quiet: Bool) -> Bool
    ) async {
        let capacity = store.configuration.writeBackConcurrency
        var startShard = 0
        var lastSecond = store.clock.nowMilliseconds()
        // Cancellation (the service group failing) ends the loop too: sleeps return at once
        // when cancelled, so waiting on `done()` alone would spin.
        var quiet = false
        while !done(quiet) && !Task.isCancelled {
            let free = capacity - inFlight.load(ordering: .relaxed)
            // A backlog: every slot busy, or as many jobs due as there were free slots.
            var backlog = free <= 0
            quiet = false
            if free > 0 {
                let jobs = store.takeDueJobs(limit: free, force: force, startShard: startShard)
                backlog = jobs.count == free
                quiet = jobs.isEmpty && free == capacity
                startShard = (startShard + 1) % store.shards.count
                for (job, shard) in jobs {
                    inFlight.wrappingAdd(1, ordering: .relaxed)
                    group.addTask {
                        await self.store.run(job, on: shard)
                        self.inFlight.wrappingSubtract(1, ordering: .relaxed)
                    }
                }
            }
            let now = store.clock.nowMilliseconds()
            if now - lastSecond >= 1000 {
                lastSecond = now
                store.sweep(budgetPerShard: 10_000)
                store.compactLog()
                store.sampleRate()
                if force {
                    logger.info("write-back: \(store.dirtyCount) dirty entries left to write")
                }
            }
            // With a backlog, come back as soon as slots may have freed rather than a whole
            // tick later: otherwise the write-back could never write more than `capacity`
            // entries per tick, whatever the backend's speed.
            try? await Task.sleep(for: backlog ? Self.backlogPause : tick)
        }
    }

    /// The pause between rounds while entries wait for a free slot.
    static let backlogPause = Duration.milliseconds(2)
}

extension CacheStore {
    /// Writes every dirty entry back now, retrying with backoff, until none is left or
    /// `timeout` passes. Reports what is left about once a second. Returns whether every dirty
    /// entry was written.
    public func writeBackAll(timeout: Duration, progress: (Int) -> Void) async -> Bool {
        let deadline = clock.nowMilliseconds() + timeout.milliseconds
        var lastReport = clock.nowMilliseconds()
        var startShard = 0
        while dirtyCount > 0 && clock.nowMilliseconds() < deadline {
            let jobs = takeDueJobs(limit: configuration.writeBackConcurrency, force: true, startShard: startShard)
            startShard = (startShard + 1) % shards.count
            await withDiscardingTaskGroup { group in
                for (job, shard) in jobs {
                    group.addTask { await self.run(job, on: shard) }
                }
            }
            if jobs.isEmpty { try? await Task.sleep(for: .milliseconds(20)) }
            if clock.nowMilliseconds() - lastReport >= 1000 {
                lastReport = clock.nowMilliseconds()
                progress(dirtyCount)
            }
        }
        return dirtyCount == 0
    }
}
