import Engine
import Synchronization

/// An in-memory ``Store`` for transport tests: strings and volatile values in dictionaries,
/// hashes rendered as JSON with sorted fields. A command on a key listed in `slowKeys` waits
/// until ``release()`` is called, to hold a command in flight.
final class FakeStore: Store {
    private struct State {
        var values: [[UInt8]: [UInt8]] = [:]
        var volatiles: [[UInt8]: [UInt8]] = [:]
        var hashes: [[UInt8]: [String: String]] = [:]
        var executed = 0
        var released = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var started: [CheckedContinuation<Void, Never>] = []
        var slowInFlight = 0
    }

    private let state = Mutex(State())
    private let slowKeys: Set<[UInt8]>

    init(slowKeys: Set<String> = []) {
        self.slowKeys = Set(slowKeys.map { Array($0.utf8) })
    }

    /// Commands executed so far.
    var executed: Int { state.withLock { $0.executed } }

    /// Lets every slow command, present and future, finish.
    func release() {
        let waiters = state.withLock { state in
            state.released = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until a slow command is in flight.
    func waitForSlowCommand() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if state.slowInFlight > 0 { return true }
                state.started.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Answers at once, as the engine answers a cache hit, unless the key is slow.
    func executeNow(_ command: Command, durability: Durability?) -> Reply? {
        guard !slowKeys.contains(command.key) else { return nil }
        return state.withLock { state in
            state.executed += 1
            return Self.apply(command, to: &state)
        }
    }

    func execute(_ command: Command, durability: Durability?) async -> Reply {
        if slowKeys.contains(command.key) {
            await withCheckedContinuation { continuation in
                let (proceed, started) = state.withLock { state in
                    state.slowInFlight += 1
                    defer { state.started = [] }
                    if state.released { return (true, state.started) }
                    state.waiters.append(continuation)
                    return (false, state.started)
                }
                for waiter in started { waiter.resume() }
                if proceed { continuation.resume() }
            }
        }
        return state.withLock { state in
            state.executed += 1
            return Self.apply(command, to: &state)
        }
    }

    func info() -> StoreInfo {
        state.withLock { state in
            StoreInfo(keys: [.string: (clean: state.values.count, dirty: 0)], commandsTotal: state.executed)
        }
    }

    private static func apply(_ command: Command, to state: inout State) -> Reply {
        guard !command.key.isEmpty else { return .error(EngineError(.emptyKey, "the key is empty")) }
        switch command {
        case .get(let key):
            return state.values[key].map { .value(StoredValue(type: .string, bytes: $0)) } ?? .notFound
        case .set(let key, let value, _, let persist):
            let created = state.values.updateValue(value, forKey: key) == nil
            return persist ? .persisted(true) : .written(created: created)
        case .setTerm(let key, let bytes, _):
            state.values[key] = bytes
            return .written(created: true)
        case .delete(let key, _):
            return .deleted(state.values.removeValue(forKey: key) != nil)
        case .persist(let key):
            return .persisted(state.values[key] != nil)
        case .volatileGet(let key):
            return state.volatiles[key].map { .value(StoredValue(type: .volatile, bytes: $0)) } ?? .notFound
        case .volatileSet(let key, let value):
            return .written(created: state.volatiles.updateValue(value, forKey: key) == nil)
        case .volatileDelete(let key):
            return .deleted(state.volatiles.removeValue(forKey: key) != nil)
        case .hashGet(let key, let fields):
            guard let hash = state.hashes[key] else { return .notFound }
            let names = fields.isEmpty ? hash.keys.sorted() : fields.map { String(decoding: $0, as: UTF8.self) }
            let members = names.compactMap { name in hash[name].map { "\"\(name)\":\"\($0)\"" } }
            return .hash(Array(("{" + members.joined(separator: ",") + "}").utf8))
        case .hashSet(let key, let field, let value, _):
            let name = String(decoding: field, as: UTF8.self)
            let created =
                state.hashes[key, default: [:]].updateValue(String(decoding: value, as: UTF8.self), forKey: name) == nil
            return .written(created: created)
        case .hashDelete(let key, let fields, _):
            guard state.hashes[key] != nil else { return .deleted(false) }
            if fields.isEmpty {
                state.hashes[key] = nil
                return .deleted(true)
            }
            var existed = false
            for field in fields {
                existed =
                    state.hashes[key]?.removeValue(forKey: String(decoding: field, as: UTF8.self)) != nil || existed
            }
            return .deleted(existed)
        }
    }
}
