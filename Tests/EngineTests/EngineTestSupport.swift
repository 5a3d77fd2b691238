import Logging
import Synchronization
@testable import Engine

/// A backend over ``MemoryBackend`` that counts requests and can hold GETs until released, so
/// that concurrency is tested without sleeping.
final class ProbeBackend: Backend {
    let base = MemoryBackend()
    private let state = Mutex<(gets: Int, puts: Int, deletes: Int, holdGets: Bool, held: [CheckedContinuation<Void, Never>])>(
        (0, 0, 0, false, []))

    private let writeFailure = Mutex<BackendError?>(nil)

    var description: String { "probe" }

    /// Makes puts and deletes fail with `error` (reads still work), or succeed with `nil`.
    func failWrites(_ error: BackendError?) {
        writeFailure.withLock { $0 = error }
    }
    var gets: Int { state.withLock { $0.gets } }
    var puts: Int { state.withLock { $0.puts } }
    var deletes: Int { state.withLock { $0.deletes } }
    var heldCount: Int { state.withLock { $0.held.count } }

    func holdGets(_ hold: Bool) {
        let released = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.holdGets = hold
            if hold { return [] }
            defer { state.held = [] }
            return state.held
        }
        for continuation in released { continuation.resume() }
    }

    func get(_ key: ObjectKey) async throws -> BackendObject? {
        await withCheckedContinuation { continuation in
            state.withLock { state in
                state.gets += 1
                if state.holdGets { state.held.append(continuation) } else { continuation.resume() }
            }
        }
        return try await base.get(key)
    }

    func head(_ key: ObjectKey) async throws -> ObjectMetadata? { try await base.head(key) }

    func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata {
        state.withLock { $0.puts += 1 }
        if let failure = writeFailure.withLock({ $0 }) { throw failure }
        return try await base.put(key, bytes: bytes, condition: condition)
    }

    func delete(_ key: ObjectKey, condition: WriteCondition) async throws {
        state.withLock { $0.deletes += 1 }
        if let failure = writeFailure.withLock({ $0 }) { throw failure }
        try await base.delete(key, condition: condition)
    }

    func shutdown() async throws {}
}

/// A store over a probe backend with a manual clock and small, test-friendly settings.
struct StoreFixture {
    let backend = ProbeBackend()
    let clock = ManualClock()
    let metrics = Metrics()
    let store: CacheStore

    init(log: AppendOnlyLog? = nil, _ configure: (inout EngineConfiguration) -> Void = { _ in }) {
        var configuration = EngineConfiguration()
        configuration.maxMemory = 64 << 20
        configuration.flushDelay = .seconds(2)
        configuration.maxDirtyAge = .seconds(10)
        configuration.idleTTL = .seconds(60)
        configuration.shardCount = 4
        configure(&configuration)
        store = CacheStore(
            configuration: configuration, backend: backend, metrics: metrics, clock: clock,
            logger: Logger(label: "test"), log: log)
    }

    /// Runs every write-back job that is due now, to completion.
    func flushDue(force: Bool = false) async {
        while true {
            let jobs = store.takeDueJobs(limit: 1000, force: force, startShard: 0)
            if jobs.isEmpty { return }
            for (job, shard) in jobs { await store.run(job, on: shard) }
        }
    }

    func object(_ type: EntryType, _ key: String) -> String? {
        backend.base.objects[ObjectKey(type: type, key: Array(key.utf8))].map { String(decoding: $0, as: UTF8.self) }
    }
}

extension CacheStore {
    func set(_ key: String, _ value: String, persist: Bool = false) async -> Reply {
        await execute(.set(key: Array(key.utf8), value: Array(value.utf8), encoding: .bytes, persist: persist))
    }

    func get(_ key: String) async -> Reply {
        await execute(.get(key: Array(key.utf8)))
    }
}

func value(_ text: String, _ type: EntryType = .string) -> Reply {
    .value(StoredValue(type: type, bytes: Array(text.utf8)))
}
