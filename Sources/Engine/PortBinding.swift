import Synchronization

/// The port a transport listens on, known once it has bound: callers of ``port()`` wait
/// until ``settle(_:)`` gives the port, or the error that stopped the binding.
public final class PortBinding: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case failed(any Error)
    }

    private let state = Mutex<State>(.waiting([]))

    public init() {}

    /// The bound port; waits until it is known. Throws the binding's error if it failed.
    public func port() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<Int, any Error>? = state.withLock { state in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .bound(let port):
                    return .success(port)
                case .failed(let error):
                    return .failure(error)
                }
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Records the outcome of binding and wakes every caller waiting in ``port()``.
    public func settle(_ outcome: Result<Int, any Error>) {
        let waiters: [CheckedContinuation<Int, any Error>] = state.withLock { state in
            var waiters: [CheckedContinuation<Int, any Error>] = []
            if case .waiting(let pending) = state { waiters = pending }
            switch outcome {
            case .success(let port): state = .bound(port)
            case .failure(let error): state = .failed(error)
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: outcome) }
    }
}
