/// The life of an entry in memory.
///
/// `absent → loading → clean ↔ dirty → writing → clean → evicted` (DESIGN.md). Loading is not
/// an entry state: a key being loaded has no entry yet, only a single-flight record in its
/// shard. Writing is the ``EntryFlags/writing`` flag on a dirty or clean entry, since a write
/// in flight may be overtaken by a newer version.
enum EntryState: UInt8 {
    /// The value in memory is what the backend holds (or a volatile value).
    case clean
    /// The value in memory is newer than the backend's; it must be written back before the
    /// entry may leave memory.
    case dirty
    /// The backend was found to have no such key (or its delete was written back): a
    /// remembered not-found answer that expires after a short while.
    case absent
}

/// Bits of ``EntryMeta/flags``.
struct EntryFlags: OptionSet {
    let rawValue: UInt8
    /// The chunk holds the value LZ4-compressed.
    static let compressed = EntryFlags(rawValue: 1 << 0)
    /// A string that arrived as an Erlang string (a list), returned to Erlang as one.
    static let erlangString = EntryFlags(rawValue: 1 << 1)
    /// Accessed since the eviction hand last passed (CLOCK's reference bit).
    static let referenced = EntryFlags(rawValue: 1 << 2)
    /// A backend write of this entry is in flight.
    static let writing = EntryFlags(rawValue: 1 << 3)
    /// Waiting in the write-back's due queue.
    static let queued = EntryFlags(rawValue: 1 << 4)
    /// A dirty delete: the key reads as missing, and the backend object is still to go.
    static let tombstone = EntryFlags(rawValue: 1 << 5)
}

/// The metadata of one entry. Its key and value live in a slab chunk:
/// `[owner id: 4 bytes][key][value, compressed or raw]`.
struct EntryMeta {
    static let noType = UInt8.max

    var chunk = ChunkRef(page: 0, offset: 0)
    /// The key's hash, which also selects the shard; compared before the key bytes.
    var hash: UInt64 = 0
    /// Grows with every change; only the latest version is written back.
    var version: UInt64 = 0
    /// The highest version the backend has acknowledged.
    var persistedVersion: UInt64 = 0
    /// The version of the write in flight, when ``EntryFlags/writing`` is set.
    var writingVersion: UInt64 = 0
    /// Milliseconds: last read or write by a client.
    var lastAccess: Int64 = 0
    /// Milliseconds: last change by a client (for the flush delay), or the expiry of an
    /// absent entry.
    var lastWrite: Int64 = 0
    /// Milliseconds: when the entry last went from clean to dirty (for `max_dirty_age`).
    var dirtySince: Int64 = 0
    /// Milliseconds: no write-back attempt before this (backoff after a failure).
    var retryAfter: Int64 = 0
    /// Bytes of the value in the chunk.
    var storedLength: UInt32 = 0
    /// Bytes of the value uncompressed.
    var rawLength: UInt32 = 0
    var keyLength: UInt16 = 0
    var sizeClass: UInt8 = 0
    var type: EntryType = .string
    var state: EntryState = .clean
    var flags: EntryFlags = []
    /// Consecutive failed write-back attempts.
    var attempts: UInt8 = 0
    /// The type under which the backend holds this key's object, or ``noType``: a string
    /// that replaces a term (or the reverse) must delete the other object.
    var backendType: UInt8 = EntryMeta.noType
    /// The lsn of the append-only log's record of the oldest change not yet written back
    /// (durability `log`); log segments older than every dirty entry's are deleted.
    var dirtyLSN: UInt64 = 0
    /// The lsn of the latest change's record.
    var lastLSN: UInt64 = 0
    /// ``lastLSN`` when the write in flight began.
    var writingLSN: UInt64 = 0
    /// Which namespace the key lives in (see ``Namespace``).
    var namespace: Namespace = .value

    var isLive: Bool { state != .absent && !flags.contains(.tombstone) }
}

/// Keys are unique within a namespace: strings and terms share one, as in Brain2's `get`
/// and the first Brain's `g`; hashes and volatile values have their own.
enum Namespace: UInt8 {
    case value = 0
    case hash = 1
    case volatile = 2

    init(_ type: EntryType) {
        switch type {
        case .string, .term: self = .value
        case .hash: self = .hash
        case .volatile: self = .volatile
        }
    }
}
