import Synchronization

/// An asynchronous semaphore counted in bytes: bounds the bytes a link holds in messages
/// read but not yet handled.
///
/// ``acquire(_:)`` waits until the bytes are available; a request larger than the whole
/// capacity waits until the budget is entirely free, then takes all of it, so any one
/// message can always go through. Waiters are served in arrival order.
final class ByteBudget: Sendable {
    private struct State {
        var available: Int
        var waiters: [(amount: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    /// The bytes the budget holds when nothing is taken.
    let capacity: Int
    private let state: Mutex<State>

    /// A budget of `capacity` bytes (at least 1).
    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.state = Mutex(State(available: max(capacity, 1)))
    }

    /// Takes `amount` bytes (at most the capacity), waiting until they are free. Returns the
    /// amount taken, to hand back to ``release(_:)``.
    func acquire(_ amount: Int) async -> Int {
        let taken = min(max(amount, 0), capacity)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.waiters.isEmpty && state.available >= taken {
                    state.available -= taken
                    return true
                }
                state.waiters.append((taken, continuation))
                return false
            }
            if granted { continuation.resume() }
        }
        return taken
    }

    /// Gives back `amount` bytes taken by ``acquire(_:)`` and wakes the waiters they satisfy.
    func release(_ amount: Int) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.available += amount
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiters.first, first.amount <= state.available {
                state.available -= first.amount
                ready.append(first.continuation)
                state.waiters.removeFirst()
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// True while someone waits in ``acquire(_:)``.
    var hasWaiters: Bool {
        state.withLock { !$0.waiters.isEmpty }
    }

    /// The bytes free now.
    var available: Int {
        state.withLock { $0.available }
    }
}
