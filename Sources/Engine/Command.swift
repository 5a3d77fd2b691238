/// How a value should be durable before a write is acknowledged.
///
/// `replicas` comes with the cluster.
public enum Durability: String, Sendable, CaseIterable {
    /// Acknowledged once in memory; written back later.
    case memory
    /// Acknowledged once appended to the local log (see `fsync`).
    case log
    /// Acknowledged only after the backend has stored it.
    case backend
}

/// How a string value arrived, so that the Erlang transport can return it as it came.
public enum ValueEncoding: UInt8, Sendable {
    /// Plain bytes (a line-protocol value, an Erlang binary).
    case bytes = 0
    /// An Erlang string: a list of character codes, returned to Erlang as a list. In the
    /// backend it is stored as plain bytes, so after a reload it reads back as a binary.
    case erlangString = 1
}

/// One request to a ``Store``: the command model every transport maps its wire format to.
///
/// Keys are bytes. The *value* namespace holds strings and Erlang terms (a key is one or the
/// other); hashes and volatile values each have a namespace of their own, as in Brain2.
public enum Command: Sendable {
    /// Reads a string or term (`get`, Erlang `g`).
    case get(key: [UInt8])
    /// Sets a string (`set`, `pset`, Erlang `s` with a binary or a string).
    case set(key: [UInt8], value: [UInt8], encoding: ValueEncoding, persist: Bool)
    /// Sets an Erlang term held as External Term Format bytes (Erlang `s` with any other term).
    case setTerm(key: [UInt8], externalTermFormat: [UInt8], persist: Bool)
    /// Deletes a string or term (`del`, `pdel`).
    case delete(key: [UInt8], persist: Bool)
    /// Writes a string or term back to the backend now (Erlang `p`).
    case persist(key: [UInt8])
    /// Reads a volatile value (`vget`).
    case volatileGet(key: [UInt8])
    /// Sets a volatile value (`vset`).
    case volatileSet(key: [UInt8], value: [UInt8])
    /// Deletes a volatile value (`vdel`).
    case volatileDelete(key: [UInt8])
    /// Reads all fields of a hash, or the named ones (`hget`).
    case hashGet(key: [UInt8], fields: [[UInt8]])
    /// Sets one field of a hash (`hsetkv`, `hpsetkv`).
    case hashSet(key: [UInt8], field: [UInt8], value: [UInt8], persist: Bool)
    /// Deletes fields of a hash, or the whole hash when `fields` is empty (`hdel`, `hpdel`).
    case hashDelete(key: [UInt8], fields: [[UInt8]], persist: Bool)

    /// Whether the command writes to the backend before it replies, whatever the durability
    /// (`pset`, `pdel`, `hpsetkv`, `hpdel`).
    public var persistsNow: Bool {
        switch self {
        case .set(_, _, _, let persist), .setTerm(_, _, let persist), .delete(_, let persist),
            .hashSet(_, _, _, let persist), .hashDelete(_, _, let persist):
            persist
        case .get, .persist, .volatileGet, .volatileSet, .volatileDelete, .hashGet: false
        }
    }

    /// Whether the command changes a persisted value (anything but volatile values and reads).
    public var changesPersistedData: Bool {
        switch self {
        case .set, .setTerm, .delete, .hashSet, .hashDelete: true
        case .get, .persist, .volatileGet, .volatileSet, .volatileDelete, .hashGet: false
        }
    }

    /// The key the command acts on.
    public var key: [UInt8] {
        switch self {
        case .get(let key), .set(let key, _, _, _), .setTerm(let key, _, _), .delete(let key, _),
            .persist(let key), .volatileGet(let key), .volatileSet(let key, _),
            .volatileDelete(let key), .hashGet(let key, _), .hashSet(let key, _, _, _),
            .hashDelete(let key, _, _):
            key
        }
    }
}

/// A value read from a ``Store``.
public struct StoredValue: Sendable, Equatable {
    /// `.string`, `.volatile` or `.term`.
    public var type: EntryType
    /// The value's bytes: the string itself, or the term's External Term Format.
    public var bytes: [UInt8]
    /// How a string arrived; `.bytes` for every other type.
    public var encoding: ValueEncoding

    public init(type: EntryType, bytes: [UInt8], encoding: ValueEncoding = .bytes) {
        self.type = type
        self.bytes = bytes
        self.encoding = encoding
    }
}

/// The answer to a ``Command``. Transports map it to their wire format.
public enum Reply: Sendable, Equatable {
    /// A value was found.
    case value(StoredValue)
    /// The key does not exist (Brain2's `null`, Erlang's `ko`).
    case notFound
    /// A write took place: `true` when it created the key (or the hash field), `false` when it
    /// replaced an existing one (Brain2's `1` / `0`).
    case written(created: Bool)
    /// A persist-now write: `true` once the backend acknowledged, `false` when it failed or
    /// timed out (Brain2's `1` / `0`). A failed persist stays dirty and is retried later.
    case persisted(Bool)
    /// A delete: `true` when the key (or at least one field) existed.
    case deleted(Bool)
    /// A hash as a JSON object (`{"field":"value",...}`), the same bytes the backend holds.
    case hash([UInt8])
    /// The command could not be carried out.
    case error(EngineError)
}

/// What transports call: the node's key-value store.
///
/// A store is safe to call from any number of tasks at once. Commands on one key take
/// effect in the order their calls are made.
public protocol Store: Sendable {
    /// Carries out one command and returns its reply. Never throws: failures are
    /// ``Reply/error(_:)`` with an ``EngineError``.
    ///
    /// - Parameter durability: this command's override of the node's `durability` setting,
    ///   or `nil` for the setting. An override applies to writes of persisted data (strings,
    ///   terms and hashes); on any other command it is ``EngineError/Code/badOption``.
    func execute(_ command: Command, durability: Durability?) async -> Reply

    /// Carries out `command` at once, on the calling thread, when it needs no waiting (a
    /// cache hit, a write acknowledged from memory), and returns its reply. Returns `nil`,
    /// having changed nothing, when it would have to wait: then call
    /// ``execute(_:durability:)``. A store without such a path always returns `nil`.
    func executeNow(_ command: Command, durability: Durability?) -> Reply?

    /// A snapshot of the node's state, for `info`.
    func info() -> StoreInfo
}

extension Store {
    public func executeNow(_ command: Command, durability: Durability?) -> Reply? { nil }

    /// Carries out one command with the node's `durability` setting.
    public func execute(_ command: Command) async -> Reply {
        await execute(command, durability: nil)
    }
}

/// A snapshot of a store's state, for `info` and the admin port.
public struct StoreInfo: Sendable {
    /// Keys in memory by type and state.
    public var keys: [EntryType: (clean: Int, dirty: Int)]
    /// Bytes of slab pages allocated.
    public var slabBytes: Int
    /// Bytes of the index: entry metadata and hash tables.
    public var indexBytes: Int
    /// Bytes the values in memory would take uncompressed.
    public var rawValueBytes: Int
    /// Bytes the values take in slabs, compressed where that helped.
    public var storedValueBytes: Int
    /// Bytes of dirty values (uncompressed), bounded by `max_dirty_bytes`.
    public var dirtyBytes: Int
    /// The `max_memory` bound.
    public var maxMemory: Int
    /// The `max_dirty_bytes` bound.
    public var maxDirtyBytes: Int
    /// Entries waiting to be written back, or being written.
    public var writeBackBacklog: Int
    /// Backend requests by operation and outcome.
    public var backendRequests: [String: Int]
    /// Commands carried out since start.
    public var commandsTotal: Int
    /// Commands per second over the last few seconds.
    public var opsPerSecond: Double
    /// Entries evicted to make room, and by idle life.
    public var evictions: Int
    /// Seconds since the store started.
    public var uptimeSeconds: Int

    public init(
        keys: [EntryType: (clean: Int, dirty: Int)] = [:], slabBytes: Int = 0, indexBytes: Int = 0,
        rawValueBytes: Int = 0, storedValueBytes: Int = 0, dirtyBytes: Int = 0, maxMemory: Int = 0,
        maxDirtyBytes: Int = 0, writeBackBacklog: Int = 0, backendRequests: [String: Int] = [:],
        commandsTotal: Int = 0, opsPerSecond: Double = 0, evictions: Int = 0, uptimeSeconds: Int = 0
    ) {
        self.keys = keys
        self.slabBytes = slabBytes
        self.indexBytes = indexBytes
        self.rawValueBytes = rawValueBytes
        self.storedValueBytes = storedValueBytes
        self.dirtyBytes = dirtyBytes
        self.maxMemory = maxMemory
        self.maxDirtyBytes = maxDirtyBytes
        self.writeBackBacklog = writeBackBacklog
        self.backendRequests = backendRequests
        self.commandsTotal = commandsTotal
        self.opsPerSecond = opsPerSecond
        self.evictions = evictions
        self.uptimeSeconds = uptimeSeconds
    }

    /// Raw value bytes divided by stored value bytes; 1 when nothing is stored.
    public var compressionRatio: Double {
        storedValueBytes == 0 ? 1 : Double(rawValueBytes) / Double(storedValueBytes)
    }

    /// `info` as `name:value` pairs, in a stable order, for the line protocol and the console.
    public var fields: [(String, String)] {
        var out: [(String, String)] = []
        for type in EntryType.allCases {
            let counts = keys[type] ?? (0, 0)
            out.append(("keys_\(type.folder)_clean", String(counts.clean)))
            out.append(("keys_\(type.folder)_dirty", String(counts.dirty)))
        }
        out.append(("memory_slab_bytes", String(slabBytes)))
        out.append(("memory_index_bytes", String(indexBytes)))
        out.append(("memory_raw_value_bytes", String(rawValueBytes)))
        out.append(("memory_stored_value_bytes", String(storedValueBytes)))
        out.append(("max_memory", String(maxMemory)))
        let ratio = (compressionRatio * 100).rounded() / 100
        out.append(("compression_ratio", String(ratio)))
        out.append(("dirty_bytes", String(dirtyBytes)))
        out.append(("max_dirty_bytes", String(maxDirtyBytes)))
        out.append(("writeback_backlog", String(writeBackBacklog)))
        for name in backendRequests.keys.sorted() {
            out.append(("backend_\(name)", String(backendRequests[name] ?? 0)))
        }
        out.append(("commands_total", String(commandsTotal)))
        out.append(("ops_per_sec", String((opsPerSecond * 10).rounded() / 10)))
        out.append(("evictions", String(evictions)))
        out.append(("uptime_seconds", String(uptimeSeconds)))
        return out
    }
}
