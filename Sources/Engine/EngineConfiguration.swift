import Synchronization

/// The engine's settings, from the node's configuration (`docs/configuration.md`).
public struct EngineConfiguration: Sendable {
    /// `max_memory`: slab pages plus index, in bytes.
    public var maxMemory: Int = 1 << 30
    /// `max_dirty_bytes`: past it, writes are refused with `dirty_limit`.
    public var maxDirtyBytes: Int = 256 << 20
    /// `idle_ttl`: a dirty entry idle this long is written back; a clean one leaves memory.
    public var idleTTL: Duration = .seconds(300)
    /// `flush_delay`: a dirty entry is written back once unchanged for this long...
    public var flushDelay: Duration = .seconds(2)
    /// `max_dirty_age`: ...or once dirty for this long, whichever comes first.
    public var maxDirtyAge: Duration = .seconds(60)
    /// How long a not-found answer from the backend is remembered.
    public var negativeTTL: Duration = .seconds(5)
    /// `durability`: when a write is acknowledged.
    public var durability: Durability = .memory
    /// How long a persist-now command (`pset`, `{p, Id}`) waits for the backend before
    /// answering that it failed (Brain2's `server_exec_timeout`).
    public var persistTimeout: Duration = .seconds(5)
    /// How long graceful shutdown waits for the write-back to drain before spilling.
    public var shutdownTimeout: Duration = .seconds(30)
    /// Shards, each with its own lock, index and slabs (see ``shardCount(forMaxMemory:)``).
    public var shardCount: Int = 8
    /// Backend writes in flight at once.
    public var writeBackConcurrency: Int = 32
    /// The longest key, in bytes.
    public var maxKeyBytes: Int = 250
    /// The largest value, in bytes (uncompressed).
    public var maxValueBytes: Int = 1_000_000

    public init() {}

    /// The smallest `max_memory` the engine accepts: room for the largest value and more.
    public static let minimumMemory = 4 << 20

    /// Shards for a memory bound: 8 (plenty for the cores of an application server), fewer
    /// under 64 MiB so that partly used pages of many shards do not eat a small bound.
    public static func shardCount(forMaxMemory maxMemory: Int) -> Int {
        max(1, min(8, maxMemory / (8 << 20)))
    }
}

/// ``EngineConfiguration`` in the units the shards work with.
struct EngineSettings: Sendable {
    let sizeClasses = SizeClasses()
    let idleTTL: Int64
    let flushDelay: Int64
    let maxDirtyAge: Int64
    let negativeTTL: Int64
    let maxDirtyBytes: Int

    init(_ configuration: EngineConfiguration) {
        idleTTL = configuration.idleTTL.milliseconds
        flushDelay = configuration.flushDelay.milliseconds
        maxDirtyAge = configuration.maxDirtyAge.milliseconds
        negativeTTL = configuration.negativeTTL.milliseconds
        maxDirtyBytes = configuration.maxDirtyBytes
    }

    /// Exponential backoff with jitter after `attempt` failures: 100 ms doubling up to 30 s,
    /// each delay drawn uniformly from its upper half so that retries of many keys spread out.
    func backoff(attempt: Int) -> Int64 {
        let ceiling = min(Int64(30_000), Int64(100) << Int64(min(max(attempt - 1, 0), 16)))
        return Int64.random(in: (ceiling / 2)...ceiling)
    }
}

/// Bytes of dirty values across every shard, against `max_dirty_bytes`.
final class DirtyBytes: Sendable {
    private let bytes = Atomic<Int>(0)

    var value: Int { bytes.load(ordering: .relaxed) }

    func add(_ delta: Int) {
        if delta != 0 { bytes.wrappingAdd(delta, ordering: .relaxed) }
    }
}

extension Duration {
    /// The duration in whole milliseconds.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
