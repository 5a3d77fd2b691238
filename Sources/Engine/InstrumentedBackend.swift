/// A backend wrapper that counts every request in `brain_backend_requests_total`.
struct InstrumentedBackend: Backend {
    let base: any Backend
    let metrics: Metrics

    init(_ base: any Backend, metrics: Metrics) {
        self.base = base
        self.metrics = metrics
    }

    var description: String { base.description }

    func get(_ key: ObjectKey) async throws -> BackendObject? {
        try await count(.get) {
            let object = try await base.get(key)
            return (object, object == nil ? .notFound : .ok)
        }
    }

    func head(_ key: ObjectKey) async throws -> ObjectMetadata? {
        try await count(.head) {
            let metadata = try await base.head(key)
            return (metadata, metadata == nil ? .notFound : .ok)
        }
    }

    func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata {
        try await count(.put) { (try await base.put(key, bytes: bytes, condition: condition), .ok) }
    }

    func delete(_ key: ObjectKey, condition: WriteCondition) async throws {
        try await count(.delete) { (try await base.delete(key, condition: condition), .ok) }
    }

    func shutdown() async throws {
        try await base.shutdown()
    }

    private func count<T>(
        _ operation: Metrics.Operation, _ body: () async throws -> (T, Metrics.Outcome)
    ) async throws -> T {
        do {
            let (result, outcome) = try await body()
            metrics.recordBackend(operation, outcome)
            return result
        } catch let error as BackendError where error.code == .preconditionFailed {
            metrics.recordBackend(operation, .precondition)
            throw error
        } catch {
            metrics.recordBackend(operation, .error)
            throw error
        }
    }
}
