import Synchronization

/// A fixed set of counters that can be bumped from any thread without a lock.
public final class CounterSet: @unchecked Sendable {
    /// The counters' names, in index order.
    public let names: [String]
    // Atomics are not copyable, so they live in a buffer of their own rather than an array.
    private let counts: UnsafeMutablePointer<Atomic<Int>>

    public init(names: [String]) {
        self.names = names
        counts = .allocate(capacity: max(names.count, 1))
        for index in 0..<names.count {
            (counts + index).initialize(to: Atomic(0))
        }
    }

    deinit {
        counts.deinitialize(count: names.count)
        counts.deallocate()
    }

    /// Adds `amount` to counter `index`.
    @inlinable
    public func add(_ index: Int, _ amount: Int = 1) {
        precondition(index >= 0 && index < names.count, "counter index out of range")
        addUnchecked(index, amount)
    }

    @usableFromInline
    func addUnchecked(_ index: Int, _ amount: Int) {
        counts[index].wrappingAdd(amount, ordering: .relaxed)
    }

    /// The current value of counter `index`.
    public func value(_ index: Int) -> Int {
        counts[index].load(ordering: .relaxed)
    }

    /// The sum of every counter.
    public var total: Int {
        (0..<names.count).reduce(0) { $0 + value($1) }
    }
}

/// The node's metrics, rendered in the Prometheus text format on the admin port.
///
/// Metric names are part of the interface contract (DESIGN.md) and documented in
/// `docs/metrics.md`.
public final class Metrics: Sendable {
    /// Backend request outcomes, the `outcome` label of `brain_backend_requests_total`.
    public enum Outcome: Int, CaseIterable, Sendable {
        case ok, error, notFound, precondition
        public var label: String {
            switch self {
            case .ok: "ok"
            case .error: "error"
            case .notFound: "not_found"
            case .precondition: "precondition"
            }
        }
    }

    /// Backend operations, the `op` label of `brain_backend_requests_total`.
    public enum Operation: Int, CaseIterable, Sendable {
        case get, put, delete, head
        public var label: String {
            switch self {
            case .get: "get"
            case .put: "put"
            case .delete: "delete"
            case .head: "head"
            }
        }
    }

    /// `brain_backend_requests_total`, indexed by `op * 4 + outcome`.
    public let backendRequests = CounterSet(
        names: Operation.allCases.flatMap { op in Outcome.allCases.map { "\(op.label)_\($0.label)" } }
    )

    private let commandSets = Mutex<[(transport: String, counters: CounterSet)]>([])
    private let closeSets = Mutex<[(transport: String, counters: CounterSet)]>([])

    public init() {}

    /// Counts one backend request.
    public func recordBackend(_ operation: Operation, _ outcome: Outcome) {
        backendRequests.add(operation.rawValue * Outcome.allCases.count + outcome.rawValue)
    }

    /// The number of backend requests of one operation and outcome so far.
    public func backendCount(_ operation: Operation, _ outcome: Outcome) -> Int {
        backendRequests.value(operation.rawValue * Outcome.allCases.count + outcome.rawValue)
    }

    /// Registers a transport's command names and returns the counters it bumps, one per
    /// command, as `brain_commands_total{transport,cmd}`.
    public func commandCounters(transport: String, commands: [String]) -> CounterSet {
        let counters = CounterSet(names: commands)
        commandSets.withLock { $0.append((transport, counters)) }
        return counters
    }

    /// Registers the reasons for which a transport closes or refuses connections itself, and
    /// returns the counters it bumps, one per reason, as
    /// `brain_connections_closed_total{transport,reason}`.
    public func connectionCloseCounters(transport: String, reasons: [String]) -> CounterSet {
        let counters = CounterSet(names: reasons)
        closeSets.withLock { $0.append((transport, counters)) }
        return counters
    }

    /// The total of every transport's commands.
    public var commandsTotal: Int {
        commandSets.withLock { sets in sets.reduce(0) { $0 + $1.counters.total } }
    }

    /// Renders every metric in the Prometheus text exposition format (version 0.0.4).
    public func render(_ info: StoreInfo) -> String {
        var out = ""
        out += "# HELP brain_backend_requests_total Backend requests by operation and outcome.\n"
        out += "# TYPE brain_backend_requests_total counter\n"
        for op in Operation.allCases {
            for outcome in Outcome.allCases {
                out += "brain_backend_requests_total{op=\"\(op.label)\",outcome=\"\(outcome.label)\"} "
                out += "\(backendCount(op, outcome))\n"
            }
        }
        var clean = 0
        var dirty = 0
        for counts in info.keys.values {
            clean += counts.clean
            dirty += counts.dirty
        }
        out += "# HELP brain_keys Keys in memory by state.\n# TYPE brain_keys gauge\n"
        out += "brain_keys{state=\"clean\"} \(clean)\nbrain_keys{state=\"dirty\"} \(dirty)\n"
        out += "# HELP brain_dirty_bytes Bytes of values not yet written back.\n"
        out += "# TYPE brain_dirty_bytes gauge\nbrain_dirty_bytes \(info.dirtyBytes)\n"
        out += "# HELP brain_writeback_backlog Entries waiting to be written back or being written.\n"
        out += "# TYPE brain_writeback_backlog gauge\nbrain_writeback_backlog \(info.writeBackBacklog)\n"
        out += "# HELP brain_memory_bytes Memory by kind: slab pages, index, and values uncompressed.\n"
        out += "# TYPE brain_memory_bytes gauge\n"
        out += "brain_memory_bytes{kind=\"slab\"} \(info.slabBytes)\n"
        out += "brain_memory_bytes{kind=\"index\"} \(info.indexBytes)\n"
        out += "brain_memory_bytes{kind=\"raw_values\"} \(info.rawValueBytes)\n"
        out += "# HELP brain_memory_stored_value_bytes Bytes values take in slabs, compressed where it helps.\n"
        out += "# TYPE brain_memory_stored_value_bytes gauge\n"
        out += "brain_memory_stored_value_bytes \(info.storedValueBytes)\n"
        out += "# HELP brain_evictions_total Entries dropped from memory to make room or when idle.\n"
        out += "# TYPE brain_evictions_total counter\nbrain_evictions_total \(info.evictions)\n"
        out += "# HELP brain_commands_total Commands by transport and command.\n"
        out += "# TYPE brain_commands_total counter\n"
        let sets = commandSets.withLock { $0 }
        for (transport, counters) in sets {
            for (index, name) in counters.names.enumerated() {
                out += "brain_commands_total{transport=\"\(transport)\",cmd=\"\(name)\"} \(counters.value(index))\n"
            }
        }
        out += "# HELP brain_connections_closed_total Connections a transport refused or closed itself, by reason.\n"
        out += "# TYPE brain_connections_closed_total counter\n"
        for (transport, counters) in closeSets.withLock({ $0 }) {
            for (index, reason) in counters.names.enumerated() {
                out += "brain_connections_closed_total{transport=\"\(transport)\",reason=\"\(reason)\"} \(counters.value(index))\n"
            }
        }
        return out
    }
}
