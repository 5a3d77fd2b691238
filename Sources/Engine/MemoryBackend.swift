import Synchronization

/// A backend held in memory (`memory://`), for tests and trials. Everything is lost when the
/// process ends. It can be told to fail, to test outages.
public final class MemoryBackend: Backend {
    private struct State {
        var objects: [ObjectKey: [UInt8]] = [:]
        var failure: BackendError? = nil
        var nextTag = 0
        var tags: [ObjectKey: String] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var description: String { "memory://" }

    /// Makes every following request fail with `error`, or succeed again with `nil`.
    public func setFailure(_ error: BackendError?) {
        state.withLock { $0.failure = error }
    }

    /// The bytes of every object, by key.
    public var objects: [ObjectKey: [UInt8]] {
        state.withLock { $0.objects }
    }

    public func get(_ key: ObjectKey) async throws -> BackendObject? {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            return state.objects[key].map { BackendObject(bytes: $0, etag: state.tags[key]) }
        }
    }

    public func head(_ key: ObjectKey) async throws -> ObjectMetadata? {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            return state.objects[key].map { ObjectMetadata(etag: state.tags[key], size: $0.count) }
        }
    }

    public func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            try Self.check(condition, key: key, tag: state.tags[key])
            state.nextTag += 1
            let tag = "\"\(state.nextTag)\""
            state.objects[key] = bytes
            state.tags[key] = tag
            return ObjectMetadata(etag: tag, size: bytes.count)
        }
    }

    public func delete(_ key: ObjectKey, condition: WriteCondition) async throws {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            try Self.check(condition, key: key, tag: state.tags[key])
            state.objects[key] = nil
            state.tags[key] = nil
        }
    }

    public func shutdown() async throws {}

    private static func check(_ condition: WriteCondition, key: ObjectKey, tag: String?) throws {
        switch condition {
        case .none: return
        case .ifMatch(let expected) where expected == tag: return
        case .ifNoneExists where tag == nil: return
        default: throw BackendError(.preconditionFailed, "\(key): the condition \(condition) does not hold")
        }
    }
}
