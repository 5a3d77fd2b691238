import Logging
import Synchronization

/// One shard: a lock around a ``ShardState``.
final class Shard: Sendable {
    let state: Mutex<ShardState>

    init(settings: EngineSettings, budget: MemoryBudget, dirtyBytes: DirtyBytes, log: AppendOnlyLog?) {
        state = Mutex(ShardState(settings: settings, budget: budget, dirtyBytes: dirtyBytes, log: log))
    }
}

/// What a command needs next, decided under the shard lock.
enum Step {
    case reply(Reply)
    /// The key is not in memory: load it, then try again.
    case load
    /// The change is in memory; the reply waits for the backend to acknowledge `version`.
    case persist(id: UInt32, version: UInt64, success: Reply, failure: Reply)
}

/// The node's store: sharded memory over a backend, with read-through and write-back.
///
/// Every command runs under the lock of the key's shard, so commands on one key are applied
/// in order. Backend I/O never happens under a lock.
public final class CacheStore: Store {
    let shards: [Shard]
    let settings: EngineSettings
    let configuration: EngineConfiguration
    let budget: MemoryBudget
    let dirtyBytes = DirtyBytes()
    let backend: any Backend
    let clock: any EngineClock
    let metrics: Metrics
    let logger: Logger
    let errorLog: RateLimitedLog
    /// The append-only log (durability `log`), or `nil`.
    public let log: AppendOnlyLog?
    private let startedAt: Int64
    private let rate = Mutex<(time: Int64, total: Int, perSecond: Double)>((0, 0, 0))

    /// Creates a store over `backend`. Backend requests are counted in `metrics`.
    public init(
        configuration: EngineConfiguration, backend: any Backend, metrics: Metrics,
        clock: any EngineClock = MonotonicClock(), logger: Logger, log: AppendOnlyLog? = nil
    ) {
        self.log = log
        self.configuration = configuration
        settings = EngineSettings(configuration)
        budget = MemoryBudget(limit: configuration.maxMemory)
        self.backend = InstrumentedBackend(backend, metrics: metrics)
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        errorLog = RateLimitedLog(logger: logger, interval: 1000, clock: clock)
        startedAt = clock.nowMilliseconds()
        let settings = settings
        let budget = budget
        let dirtyBytes = dirtyBytes
        shards = (0..<max(1, configuration.shardCount)).map { _ in
            Shard(settings: settings, budget: budget, dirtyBytes: dirtyBytes, log: log)
        }
    }

    // MARK: Commands

    public func execute(_ command: Command, durability override: Durability?) async -> Reply {
        let placed: Placed
        switch place(command, durability: override) {
        case .failure(let error): return .error(error)
        case .success(let success): placed = success
        }
        let shard = placed.shard
        var memoryRetries = 0
        while true {
            let (step, lsn) = applyOnce(placed)
            if placed.logged, lsn > 0, case .reply(let reply) = step, let log {
                // Acknowledge only once the log holds the change as durably as `fsync` says.
                return await log.waitDurable(lsn)
                    ? reply
                    : .error(EngineError(.logUnavailable, "the change could not be written to the append-only log; it is kept in memory and will be written back, but was not logged"))
            }
            switch step {
            case .reply(.error(let error)) where error.code == .outOfMemory && memoryRetries < 3:
                // This shard has nothing left to evict: take pages from the others.
                memoryRetries += 1
                if !releaseMemory(excluding: shard) { return .error(error) }
            case .reply(let reply):
                return reply
            case .load:
                let loaded = await load(shard: shard, namespace: placed.namespace, key: placed.key, hash: placed.hash)
                if case .failed(let error) = loaded {
                    if error.code == .outOfMemory && memoryRetries < 3 {
                        memoryRetries += 1
                        if releaseMemory(excluding: shard) { continue }
                    }
                    return .error(error)
                }
            case .persist(let id, let version, let success, let failure):
                return await persist(shard: shard, id: id, hash: placed.hash, version: version) ? success : failure
            }
        }
    }

    /// Carries out `command` at once when that needs no waiting, as a cache hit does, and
    /// returns its reply; returns `nil`, having changed nothing, when it must wait (for the
    /// backend, the log's sync, or memory to be freed): then call ``execute(_:durability:)``.
    public func executeNow(_ command: Command, durability override: Durability?) -> Reply? {
        let placed: Placed
        switch place(command, durability: override) {
        case .failure(let error): return .error(error)
        case .success(let success): placed = success
        }
        // These reach `.persist` only after changing the entry, or wait for the log's sync.
        if placed.logged || command.persistsNow { return nil }
        if case .persist = command { return nil }
        if placed.durability == .backend && command.changesPersistedData { return nil }
        switch applyOnce(placed).step {
        case .reply(.error(let error)) where error.code == .outOfMemory:
            return nil
        case .reply(let reply):
            return reply
        case .load, .persist:
            return nil
        }
    }

    /// A command checked and aimed at its shard: what ``execute(_:durability:)`` and
    /// ``executeNow(_:durability:)`` need before they touch the shard.
    private struct Placed {
        var command: Command
        var key: [UInt8]
        var durability: Durability
        var namespace: Namespace
        var prepared: PreparedValue?
        var hash: UInt64
        var shard: Shard
        /// Whether the reply waits for the log's sync.
        var logged: Bool
    }

    /// Checks `command` (key, value size, durability override, the log) and finds its shard.
    private func place(_ command: Command, durability override: Durability?) -> Result<Placed, EngineError> {
        let key = command.key
        if key.isEmpty { return .failure(EngineError(.emptyKey, "the key is empty")) }
        if key.count > configuration.maxKeyBytes {
            return .failure(EngineError(.keyTooLong, "the key is \(key.count) bytes; the limit is \(configuration.maxKeyBytes)"))
        }
        let durability = override ?? configuration.durability
        if let override, let error = check(override, for: command) { return .failure(error) }
        let namespace: Namespace
        var prepared: PreparedValue? = nil
        switch command {
        case .get, .delete, .persist: namespace = .value
        case .set(_, let value, _, _), .setTerm(_, let value, _):
            if let error = checkSize(value) { return .failure(error) }
            namespace = .value
            prepared = PreparedValue(value)
        case .volatileSet(_, let value):
            if let error = checkSize(value) { return .failure(error) }
            namespace = .volatile
            prepared = PreparedValue(value)
        case .volatileGet, .volatileDelete: namespace = .volatile
        case .hashSet(_, _, let value, _):
            if let error = checkSize(value) { return .failure(error) }
            namespace = .hash
        case .hashGet, .hashDelete: namespace = .hash
        }
        // Every change on a node with a log is appended to it (replay must see them all, in
        // order), whatever this command's durability: while the log cannot be written, none
        // is taken, so that changes cannot pile up in memory waiting for the disk.
        if command.changesPersistedData, let log, !log.isAccepting {
            return .failure(EngineError(.logUnavailable, "the append-only log cannot be written (is the disk full?); writes are refused until it can"))
        }
        let hash = Self.hash(namespace, key)
        return .success(Placed(
            command: command, key: key, durability: durability, namespace: namespace, prepared: prepared,
            hash: hash, shard: shards[Int(hash >> 40) % shards.count],
            logged: log != nil && durability == .log && command.changesPersistedData))
    }

    /// Applies a placed command to its shard once; returns the step and the lsn it logged.
    private func applyOnce(_ placed: Placed) -> (step: Step, lsn: UInt64) {
        let now = clock.nowMilliseconds()
        let maxValueBytes = configuration.maxValueBytes
        return placed.shard.state.withLock { state in
            placed.key.withUnsafeBytes { keyBytes in
                state.pendingLSN = 0
                let step = state.apply(
                    placed.command, key: keyBytes, hash: placed.hash, prepared: placed.prepared, now: now,
                    durability: placed.durability, maxValueBytes: maxValueBytes)
                return (step, state.pendingLSN)
            }
        }
    }

    /// Frees up to a large chunk's worth of pages held by shards other than `excluded`, whose
    /// entries may all leave memory. Returns whether any page was freed.
    private func releaseMemory(excluding excluded: Shard) -> Bool {
        var freed = 0
        for shard in shards where shard !== excluded {
            while freed < SizeClasses.largestChunk / SizeClasses.pageSize,
                shard.state.withLock({ $0.releaseEvictablePage() })
            {
                freed += 1
            }
        }
        return freed > 0
    }

    /// Why a command's durability override does not apply to it, or `nil` when it does.
    private func check(_ override: Durability, for command: Command) -> EngineError? {
        guard command.changesPersistedData else {
            return EngineError(
                .badOption,
                "durability applies only to commands that change strings, terms or hashes (set, del, hsetkv, hdel and their persist-now forms)")
        }
        if command.persistsNow && override != .backend {
            return EngineError(
                .badOption,
                "a persist-now command (pset, pdel, hpsetkv, hpdel) always waits for the backend; durability=\(override.rawValue) does not apply")
        }
        if override == .log && log == nil {
            return EngineError(
                .badOption,
                "durability=log needs the append-only log, which this node does not keep (durability = \(configuration.durability.rawValue)); start it with durability = log")
        }
        return nil
    }

    private func checkSize(_ value: [UInt8]) -> EngineError? {
        value.count > configuration.maxValueBytes
            ? EngineError(.valueTooLarge, "the value is \(value.count) bytes; the limit is \(configuration.maxValueBytes)")
            : nil
    }

    /// The key's hash: seeded per process (SipHash through `Hasher`), so that clients cannot
    /// aim keys at one slot; never 0, which marks a free entry.
    static func hash(_ namespace: Namespace, _ key: [UInt8]) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(namespace.rawValue)
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        let value = UInt64(bitPattern: Int64(hasher.finalize()))
        return value == 0 ? 1 : value
    }

    // MARK: Read-through

    /// Loads a key from the backend, once however many tasks ask at the same moment.
    private func load(shard: Shard, namespace: Namespace, key: [UInt8], hash: UInt64) async -> LoadSignal {
        let loadKey = LoadKey(namespace: namespace, key: key)
        let leader = shard.state.withLock { state -> Bool in
            if state.loads[loadKey] != nil { return false }
            state.loads[loadKey] = []
            return true
        }
        if !leader {
            return await withCheckedContinuation { continuation in
                shard.state.withLock { state in
                    if state.loads[loadKey] != nil {
                        state.loads[loadKey]!.append(continuation)
                    } else {
                        continuation.resume(returning: .retry)
                    }
                }
            }
        }
        let signal: LoadSignal
        do {
            var found: (EntryType, BackendObject)? = nil
            for type in namespace.persistedTypes {
                if let object = try await backend.get(ObjectKey(type: type, key: key)) {
                    found = (type, object)
                    break
                }
            }
            let prepared = found.map { PreparedValue($0.1.bytes) }
            let now = clock.nowMilliseconds()
            let negativeTTL = settings.negativeTTL
            signal = shard.state.withLock { state -> LoadSignal in
                key.withUnsafeBytes { keyBytes -> LoadSignal in
                    guard state.lookup(namespace, keyBytes, hash: hash) == nil else { return .retry }
                    do throws(EngineError) {
                        if let (type, _) = found {
                            let id = try state.insert(
                                namespace: namespace, type: type, key: keyBytes, hash: hash,
                                value: prepared, state: .clean, now: now)
                            state.meta[Int(id)].backendType = type.rawValue
                        } else {
                            let id = try state.insert(
                                namespace: namespace, type: namespace.persistedTypes[0], key: keyBytes,
                                hash: hash, value: nil, state: .absent, now: now)
                            state.meta[Int(id)].lastWrite = now + negativeTTL
                        }
                        return .retry
                    } catch {
                        return .failed(error)
                    }
                }
            }
        } catch let error as BackendError {
            errorLog.error("loading \(namespace.persistedTypes[0].folder)/\(ObjectName.encode(key)) failed: \(error)")
            signal = .failed(EngineError(.backendUnavailable, "the key is not in memory and the backend failed: \(error.message)"))
        } catch {
            signal = .failed(EngineError(.backendUnavailable, "the key is not in memory and the backend failed: \(error)"))
        }
        let waiters = shard.state.withLock { $0.loads.removeValue(forKey: loadKey) ?? [] }
        for waiter in waiters { waiter.resume(returning: signal) }
        return signal
    }

    // MARK: Write-back

    /// Writes one entry to the backend. Returns whether the backend acknowledged.
    func perform(_ job: WriteJob) async -> Bool {
        let objectKey = ObjectKey(type: job.type, key: job.key)
        do {
            if let bytes = job.bytes {
                _ = try await backend.put(objectKey, bytes: bytes, condition: .none)
                if let stale = job.staleType {
                    try await backend.delete(ObjectKey(type: stale, key: job.key), condition: .none)
                }
            } else {
                try await backend.delete(objectKey, condition: .none)
            }
            return true
        } catch {
            errorLog.error("write-back of \(objectKey) failed, will retry: \(error)")
            return false
        }
    }

    /// Carries out a write-back job and records its outcome.
    func run(_ job: WriteJob, on shard: Shard) async {
        let succeeded = await perform(job)
        let now = clock.nowMilliseconds()
        let waiters = shard.state.withLock { $0.finishWrite(job, succeeded: succeeded, now: now) }
        for waiter in waiters { waiter.resume() }
    }

    /// Writes an entry now and waits until the backend has acknowledged `version` (or a later
    /// one), retrying with backoff until the persist timeout. Keeps per-key order: it waits for
    /// a write of the same key that is already in flight.
    private func persist(shard: Shard, id: UInt32, hash: UInt64, version: UInt64) async -> Bool {
        enum Action {
            case done(Bool)
            case wait
            case write(WriteJob)
        }
        let deadline = clock.nowMilliseconds() + configuration.persistTimeout.milliseconds
        var failures = 0
        while true {
            let action = shard.state.withLock { state -> Action in
                guard Int(id) < state.meta.count, state.meta[Int(id)].hash == hash else {
                    // Gone from memory: only clean entries leave, so it was written.
                    return .done(true)
                }
                let entry = state.meta[Int(id)]
                if entry.persistedVersion >= version || entry.state != .dirty { return .done(true) }
                if entry.flags.contains(.writing) { return .wait }
                return .write(state.beginWrite(id))
            }
            switch action {
            case .done(let result):
                return result
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    shard.state.withLock { state in
                        if Int(id) < state.meta.count, state.meta[Int(id)].hash == hash,
                            state.meta[Int(id)].flags.contains(.writing)
                        {
                            state.writeWaiters[id, default: []].append(continuation)
                        } else {
                            continuation.resume()
                        }
                    }
                }
            case .write(let job):
                let succeeded = await perform(job)
                let now = clock.nowMilliseconds()
                let waiters = shard.state.withLock { $0.finishWrite(job, succeeded: succeeded, now: now) }
                for waiter in waiters { waiter.resume() }
                if !succeeded {
                    failures += 1
                    let remaining = deadline - now
                    if remaining <= 0 { return false }
                    let pause = min(remaining, settings.backoff(attempt: failures))
                    try? await Task.sleep(for: .milliseconds(pause))
                }
            }
            if clock.nowMilliseconds() >= deadline {
                return shard.state.withLock { state in
                    Int(id) < state.meta.count && state.meta[Int(id)].hash == hash
                        ? state.meta[Int(id)].persistedVersion >= version : true
                }
            }
        }
    }

    /// Takes due write-back jobs from every shard, at most `limit`, starting at a rotating
    /// shard so that no shard starves.
    func takeDueJobs(limit: Int, force: Bool, startShard: Int) -> [(WriteJob, Shard)] {
        var jobs: [(WriteJob, Shard)] = []
        let now = clock.nowMilliseconds()
        for offset in 0..<shards.count where jobs.count < limit {
            let shard = shards[(startShard + offset) % shards.count]
            let taken = shard.state.withLock { $0.takeDue(now: now, limit: limit - jobs.count, force: force) }
            jobs.append(contentsOf: taken.map { ($0, shard) })
        }
        return jobs
    }

    /// Runs the idle-life sweep over every shard, a bounded slice each.
    func sweep(budgetPerShard: Int) {
        let now = clock.nowMilliseconds()
        for shard in shards {
            shard.state.withLock { $0.sweep(now: now, budget: budgetPerShard) }
        }
    }

    /// Deletes log segments that hold only changes already written back.
    func compactLog() {
        guard let log else { return }
        var oldest = log.nextLSN
        for shard in shards {
            shard.state.withLock { state in
                for entry in state.meta where entry.hash != 0 && entry.state == .dirty && entry.dirtyLSN > 0 {
                    oldest = min(oldest, entry.dirtyLSN)
                }
            }
        }
        log.discard(olderThan: oldest)
    }

    /// Dirty entries (including those being written) across every shard.
    public var dirtyCount: Int {
        shards.reduce(0) { total, shard in
            total + shard.state.withLock { state in
                state.meta.reduce(0) { $0 + ($1.hash != 0 && $1.state == .dirty ? 1 : 0) }
            }
        }
    }

    // MARK: Info

    /// Records the command total for the ops-per-second figure; called about once a second.
    func sampleRate() {
        let now = clock.nowMilliseconds()
        let total = metrics.commandsTotal
        rate.withLock { sample in
            if sample.time > 0, now > sample.time {
                sample.perSecond = Double(total - sample.total) * 1000 / Double(now - sample.time)
            }
            sample.time = now
            sample.total = total
        }
    }

    public func info() -> StoreInfo {
        var info = StoreInfo()
        var backlog = 0
        for shard in shards {
            shard.state.withLock { state in
                for entry in state.meta where entry.hash != 0 && entry.isLive {
                    var counts = info.keys[entry.type] ?? (0, 0)
                    if entry.state == .dirty { counts.dirty += 1 } else { counts.clean += 1 }
                    info.keys[entry.type] = counts
                }
                for entry in state.meta where entry.hash != 0 && entry.state == .dirty {
                    backlog += 1
                }
                info.slabBytes += state.slab.pageBytes
                info.indexBytes += state.indexBytes
                info.rawValueBytes += state.rawBytes
                info.storedValueBytes += state.storedBytes
                info.evictions += state.evictions
            }
        }
        info.dirtyBytes = dirtyBytes.value
        info.maxMemory = configuration.maxMemory
        info.maxDirtyBytes = configuration.maxDirtyBytes
        info.writeBackBacklog = backlog
        for op in Metrics.Operation.allCases {
            for outcome in Metrics.Outcome.allCases {
                info.backendRequests["\(op.label)_\(outcome.label)"] = metrics.backendCount(op, outcome)
            }
        }
        info.commandsTotal = metrics.commandsTotal
        info.opsPerSecond = rate.withLock { $0.perSecond }
        info.uptimeSeconds = Int((clock.nowMilliseconds() - startedAt) / 1000)
        return info
    }
}

extension Namespace {
    /// The types whose backend objects may hold a key of this namespace, in the order a load
    /// tries them.
    var persistedTypes: [EntryType] {
        switch self {
        case .value: [.string, .term]
        case .hash: [.hash]
        case .volatile: []
        }
    }
}
