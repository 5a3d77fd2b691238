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

/// The metadata of one entry, as the shard's logic reads and changes it. Its key and value
/// live in a slab chunk: `[owner id: 4 bytes][key][value, compressed or raw]`.
///
/// This is the unpacked form, built on demand: an ``EntryTable`` stores every entry as a
/// ``PackedEntry`` of 56 bytes, and an ``EntrySideRecord`` only for an entry whose fields do
/// not fit it (see ``EntryTable``). The size class of the chunk is the class of its slab page.
struct EntryMeta {
    static let noType = UInt8.max

    var chunk = ChunkRef(page: 0, offset: 0)
    /// The key's hash, which also selects the shard; compared before the key bytes. 0 marks
    /// a free id.
    var hash: UInt64 = 0
    /// Grows with every change; only the latest version is written back.
    var version: UInt64 = 0
    /// The highest version the backend has acknowledged.
    var persistedVersion: UInt64 = 0
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
    var type: EntryType = .string
    var state: EntryState = .clean
    var flags: EntryFlags = []
    /// Consecutive failed write-back attempts.
    var attempts: UInt8 = 0
    /// The type under which the backend holds this key's object, or ``noType``: a string
    /// that replaces a term (or the reverse) must delete the other object.
    var backendType: UInt8 = EntryMeta.noType
    /// The lsn of the append-only log's record of the oldest change not yet written back
    /// (durability `log`); log segments older than every dirty entry's are deleted. Read as 0
    /// once the entry is neither dirty nor being written.
    var dirtyLSN: UInt64 = 0
    /// The lsn of the latest change's record (0 once neither dirty nor being written).
    var lastLSN: UInt64 = 0
    /// ``lastLSN`` when the write in flight began (0 once neither dirty nor being written).
    var writingLSN: UInt64 = 0

    /// Which namespace the key lives in: the type decides it (see ``Namespace``).
    var namespace: Namespace { Namespace(type) }

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

/// One entry as an ``EntryTable`` stores it: 56 bytes, every field a clean entry, a
/// dirty one or a remembered not-found answer needs in the common case.
///
/// - Times are milliseconds in 48 bits (a low `UInt32` and a signed high `Int16`): exact for
///   any clock reading within ±4,400 years of the clock's origin.
/// - The persisted version is kept as the lag `version - persistedVersion` in 16 bits.
///   ``sideMarker`` in that field says the entry has an ``EntrySideRecord`` instead, which
///   then holds the persisted version and `dirtySince`, and whose index takes the place of
///   `dirtySince`'s low half.
/// - The chunk's offset fits 16 bits: chunks of up to half a page are cut from pages of
///   ``SizeClasses/pageSize`` (64 KiB) bytes, and a larger chunk starts its own page.
///
/// The fields read on the hot paths (hash, lengths, type, state, flags, times, chunk) are
/// readable here without unpacking; only ``lastAccess`` and ``flags`` may be changed here,
/// since neither ever lives in a side record.
struct PackedEntry {
    /// The lag value that marks an entry with a side record.
    static let sideMarker = UInt16.max

    fileprivate(set) var hash: UInt64 = 0
    fileprivate(set) var version: UInt64 = 0
    fileprivate var page: UInt32 = 0
    fileprivate(set) var storedLength: UInt32 = 0
    fileprivate(set) var rawLength: UInt32 = 0
    fileprivate var lastAccessLow: UInt32 = 0
    fileprivate var lastWriteLow: UInt32 = 0
    /// `dirtySince`'s low half, or the index of the side record when there is one.
    fileprivate var dirtySinceLowOrSide: UInt32 = 0
    fileprivate var lastAccessHigh: Int16 = 0
    fileprivate var lastWriteHigh: Int16 = 0
    fileprivate var dirtySinceHigh: Int16 = 0
    fileprivate var offset: UInt16 = 0
    fileprivate(set) var keyLength: UInt16 = 0
    /// `version - persistedVersion`, or ``sideMarker``.
    fileprivate var persistedLag: UInt16 = 0
    fileprivate(set) var type: EntryType = .string
    fileprivate(set) var state: EntryState = .clean
    var flags: EntryFlags = []
    fileprivate(set) var backendType: UInt8 = EntryMeta.noType

    var chunk: ChunkRef { ChunkRef(page: page, offset: UInt32(offset)) }

    var namespace: Namespace { Namespace(type) }

    var isLive: Bool { state != .absent && !flags.contains(.tombstone) }

    var lastAccess: Int64 {
        get { Self.time(low: lastAccessLow, high: lastAccessHigh) }
        set { (lastAccessLow, lastAccessHigh) = Self.split(newValue) }
    }

    fileprivate(set) var lastWrite: Int64 {
        get { Self.time(low: lastWriteLow, high: lastWriteHigh) }
        set { (lastWriteLow, lastWriteHigh) = Self.split(newValue) }
    }

    fileprivate var hasSideRecord: Bool { persistedLag == Self.sideMarker }

    /// Valid only without a side record.
    fileprivate var dirtySince: Int64 {
        get { Self.time(low: dirtySinceLowOrSide, high: dirtySinceHigh) }
        set { (dirtySinceLowOrSide, dirtySinceHigh) = Self.split(newValue) }
    }

    /// The largest time the 48 bits hold; larger ones are stored as this (and the smallest
    /// as its negation minus one).
    static let timeLimit: Int64 = (1 << 47) - 1

    @inline(__always)
    private static func time(low: UInt32, high: Int16) -> Int64 {
        Int64(high) << 32 | Int64(low)
    }

    @inline(__always)
    private static func split(_ time: Int64) -> (UInt32, Int16) {
        let clamped = min(max(time, -timeLimit - 1), timeLimit)
        return (UInt32(truncatingIfNeeded: clamped), Int16(truncatingIfNeeded: clamped >> 32))
    }
}

/// The fields of an entry that a ``PackedEntry`` has no room for. Only an entry that needs
/// one has one:
///
/// - a write-back failed and its backoff is pending (`retryAfter`, `attempts` not 0);
/// - with the append-only log, while it is dirty or being written (its lsns);
/// - more than 65,534 versions behind the backend (the persisted-version lag overflows).
///
/// A clean entry, and a dirty one of a node without the log whose writes succeed, has none.
struct EntrySideRecord {
    var persistedVersion: UInt64 = 0
    var dirtySince: Int64 = 0
    var retryAfter: Int64 = 0
    var dirtyLSN: UInt64 = 0
    var lastLSN: UInt64 = 0
    var writingLSN: UInt64 = 0
    var attempts: UInt8 = 0
}

/// A shard's entries by id: packed records in blocks of ``blockSize`` that are allocated
/// once and never moved (so growing never copies the entries or holds twice their memory),
/// plus a dense array of side records for the few entries that need one.
///
/// `table[id]` unpacks an entry into an ``EntryMeta``, and storing one packs it: the side
/// record is taken or given back as the fields require. `table[packed: id]` reads the packed
/// form, for hot paths that need no field of the side record.
struct EntryTable: Sequence {
    /// Entries per block: 512 × 56 bytes = 28 KiB.
    static let blockSize = 512
    private static let blockShift = 9
    private static let blockMask = blockSize - 1

    private var blocks: [[PackedEntry]] = []
    private var sides: [EntrySideRecord] = []
    private var freeSides: [UInt32] = []
    /// Ids handed out so far (live, remembered absent, or free for reuse).
    private(set) var count = 0
    /// Entries that have a side record now.
    private(set) var sideRecordCount = 0

    var isEmpty: Bool { count == 0 }

    var indices: Range<Int> { 0..<count }

    /// Bytes allocated for the entries: blocks, the block list, side records and their free
    /// list.
    var allocatedBytes: Int {
        blocks.count * Self.blockSize * MemoryLayout<PackedEntry>.stride
            + blocks.capacity * MemoryLayout<[PackedEntry]>.stride
            + sides.capacity * MemoryLayout<EntrySideRecord>.stride
            + freeSides.capacity * MemoryLayout<UInt32>.stride
    }

    /// Adds an entry under the next id, and returns the id.
    mutating func append(_ entry: EntryMeta) -> UInt32 {
        if count == blocks.count * Self.blockSize {
            blocks.append(Array(repeating: PackedEntry(), count: Self.blockSize))
        }
        count += 1
        self[count - 1] = entry
        return UInt32(count - 1)
    }

    /// The packed form of an entry.
    subscript(packed id: Int) -> PackedEntry {
        @inline(__always) get { blocks[id >> Self.blockShift][id & Self.blockMask] }
    }

    /// Changes the fields of an entry that always live in its packed form (``PackedEntry/flags``
    /// and ``PackedEntry/lastAccess``).
    @inline(__always) @discardableResult
    mutating func update<Result>(_ id: Int, _ body: (inout PackedEntry) -> Result) -> Result {
        body(&blocks[id >> Self.blockShift][id & Self.blockMask])
    }

    subscript(id: Int) -> EntryMeta {
        get {
            let packed = blocks[id >> Self.blockShift][id & Self.blockMask]
            var entry = EntryMeta()
            entry.chunk = packed.chunk
            entry.hash = packed.hash
            entry.version = packed.version
            entry.lastAccess = packed.lastAccess
            entry.lastWrite = packed.lastWrite
            entry.storedLength = packed.storedLength
            entry.rawLength = packed.rawLength
            entry.keyLength = packed.keyLength
            entry.type = packed.type
            entry.state = packed.state
            entry.flags = packed.flags
            entry.backendType = packed.backendType
            if packed.hasSideRecord {
                let side = sides[Int(packed.dirtySinceLowOrSide)]
                entry.persistedVersion = side.persistedVersion
                entry.dirtySince = side.dirtySince
                entry.retryAfter = side.retryAfter
                entry.attempts = side.attempts
                entry.dirtyLSN = side.dirtyLSN
                entry.lastLSN = side.lastLSN
                entry.writingLSN = side.writingLSN
            } else {
                entry.persistedVersion = packed.version &- UInt64(packed.persistedLag)
                entry.dirtySince = packed.dirtySince
            }
            return entry
        }
        set {
            let block = id >> Self.blockShift
            let slot = id & Self.blockMask
            var packed = blocks[block][slot]
            let oldSide = packed.hasSideRecord ? packed.dirtySinceLowOrSide : nil
            precondition(newValue.chunk.offset <= UInt32(UInt16.max), "a chunk offset beyond a 64 KiB page")
            packed.page = newValue.chunk.page
            packed.offset = UInt16(truncatingIfNeeded: newValue.chunk.offset)
            packed.hash = newValue.hash
            packed.version = newValue.version
            packed.lastAccess = newValue.lastAccess
            packed.lastWrite = newValue.lastWrite
            packed.storedLength = newValue.storedLength
            packed.rawLength = newValue.rawLength
            packed.keyLength = newValue.keyLength
            packed.type = newValue.type
            packed.state = newValue.state
            packed.flags = newValue.flags
            packed.backendType = newValue.backendType
            // The lsns matter only while the entry is dirty or being written: the next change
            // sets them afresh (see ShardState.markDirty).
            let lsnsMatter = newValue.state == .dirty || newValue.flags.contains(.writing)
            let lag = newValue.version &- newValue.persistedVersion
            let lagFits = newValue.persistedVersion <= newValue.version && lag < UInt64(PackedEntry.sideMarker)
            let needsSide = !lagFits || newValue.retryAfter != 0 || newValue.attempts != 0
                || (lsnsMatter && (newValue.dirtyLSN | newValue.lastLSN | newValue.writingLSN) != 0)
            if needsSide {
                let record = EntrySideRecord(
                    persistedVersion: newValue.persistedVersion, dirtySince: newValue.dirtySince,
                    retryAfter: newValue.retryAfter,
                    dirtyLSN: lsnsMatter ? newValue.dirtyLSN : 0, lastLSN: lsnsMatter ? newValue.lastLSN : 0,
                    writingLSN: lsnsMatter ? newValue.writingLSN : 0, attempts: newValue.attempts)
                let index: UInt32
                if let oldSide {
                    index = oldSide
                    sides[Int(index)] = record
                } else if let free = freeSides.popLast() {
                    index = free
                    sides[Int(index)] = record
                    sideRecordCount += 1
                } else {
                    index = UInt32(sides.count)
                    sides.append(record)
                    sideRecordCount += 1
                }
                packed.persistedLag = PackedEntry.sideMarker
                packed.dirtySinceLowOrSide = index
                packed.dirtySinceHigh = 0
            } else {
                if let oldSide {
                    freeSides.append(oldSide)
                    sideRecordCount -= 1
                }
                packed.persistedLag = UInt16(truncatingIfNeeded: lag)
                packed.dirtySince = newValue.dirtySince
            }
            blocks[block][slot] = packed
        }
    }

    func makeIterator() -> Iterator {
        Iterator(table: self)
    }

    /// Unpacks every entry by id, free ids included (their hash is 0).
    struct Iterator: IteratorProtocol {
        fileprivate let table: EntryTable
        fileprivate var position = 0

        mutating func next() -> EntryMeta? {
            guard position < table.count else { return nil }
            defer { position += 1 }
            return table[position]
        }
    }
}
