import Engine
import Synchronization

/// An in-memory ``Store`` for transport tests: values (strings with their encoding, and
/// terms), volatile values and hashes (kept as ``HashDocument``s), with every command
/// recorded. A command on a key in `slowKeys` waits until ``release()``.
final class FakeStore: Store {
    private struct State {
        var values: [[UInt8]: StoredValue] = [:]
        var volatiles: [[UInt8]: [UInt8]] = [:]
        var hashes: [[UInt8]: HashDocument] = [:]
        var commands: [String] = []
        var failure: EngineError?
        var released = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let slowKeys: Set<[UInt8]>

    init(slowKeys: Set<[UInt8]> = []) {
        self.slowKeys = slowKeys
    }

    /// Every command executed so far, as `String(describing:)` renders it, after
    /// `with <durability> ` when the command carried an override.
    var commands: [String] { state.withLock { $0.commands } }

    /// The value of `key`, if any.
    func value(_ key: String) -> StoredValue? { state.withLock { $0.values[Array(key.utf8)] } }

    /// Makes every later command fail with `error` (nil: succeed again).
    func failAll(with error: EngineError?) { state.withLock { $0.failure = error } }

    /// Lets every slow command, present and future, finish.
    func release() {
        let waiters = state.withLock { state in
            state.released = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func execute(_ command: Command, durability: Durability?) async -> Reply {
        if slowKeys.contains(command.key) {
            await withCheckedContinuation { continuation in
                let proceed = state.withLock { state in
                    if state.released { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if proceed { continuation.resume() }
            }
        }
        return state.withLock { state in
            state.commands.append((durability.map { "with \($0) " } ?? "") + String(describing: command))
            if let failure = state.failure { return .error(failure) }
            return Self.apply(command, to: &state)
        }
    }

    func info() -> StoreInfo {
        state.withLock { state in
            StoreInfo(keys: [.string: (clean: 0, dirty: state.values.count)], maxMemory: 1 << 30, commandsTotal: state.commands.count, opsPerSecond: 2.5)
        }
    }

    private static func apply(_ command: Command, to state: inout State) -> Reply {
        guard !command.key.isEmpty else { return .error(EngineError(.emptyKey, "the key is empty")) }
        switch command {
        case .get(let key):
            return state.values[key].map { .value($0) } ?? .notFound
        case .set(let key, let value, let encoding, let persist):
            let created =
                state.values.updateValue(StoredValue(type: .string, bytes: value, encoding: encoding), forKey: key) == nil
            return persist ? .persisted(true) : .written(created: created)
        case .setTerm(let key, let bytes, let persist):
            let created = state.values.updateValue(StoredValue(type: .term, bytes: bytes), forKey: key) == nil
            return persist ? .persisted(true) : .written(created: created)
        case .delete(let key, let persist):
            let existed = state.values.removeValue(forKey: key) != nil
            return persist ? .persisted(true) : .deleted(existed)
        case .persist(let key):
            return state.values[key] == nil ? .notFound : .persisted(true)
        case .volatileGet(let key):
            return state.volatiles[key].map { .value(StoredValue(type: .volatile, bytes: $0)) } ?? .notFound
        case .volatileSet(let key, let value):
            return .written(created: state.volatiles.updateValue(value, forKey: key) == nil)
        case .volatileDelete(let key):
            return .deleted(state.volatiles.removeValue(forKey: key) != nil)
        case .hashGet(let key, let fields):
            guard let hash = state.hashes[key] else { return .notFound }
            return .hash(fields.isEmpty ? hash.json() : hash.subset(fields: fields).json())
        case .hashSet(let key, let field, let value, _):
            var hash = state.hashes[key] ?? HashDocument()
            do throws(EngineError) {
                let created = try hash.set(field: field, value: value)
                state.hashes[key] = hash
                return .written(created: created)
            } catch {
                return .error(error)
            }
        case .hashDelete(let key, let fields, _):
            guard var hash = state.hashes[key] else { return .deleted(false) }
            if fields.isEmpty {
                state.hashes[key] = nil
                return .deleted(true)
            }
            let removed = hash.remove(fields: fields)
            state.hashes[key] = hash.isEmpty ? nil : hash
            return .deleted(removed > 0)
        }
    }
}
