#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The value bytes of a write, prepared outside the shard lock: compressed when that saves
/// space.
struct PreparedValue {
    /// The bytes to store: `compressed` if present, else `raw`.
    var raw: [UInt8]
    var compressed: [UInt8]?

    init(_ raw: [UInt8]) {
        self.raw = raw
        compressed = LZ4Codec.compress(raw)
    }

    var storedCount: Int { compressed?.count ?? raw.count }
}

/// A write-back to carry out: taken from a shard under its lock, performed without it.
struct WriteJob {
    var id: UInt32
    var hash: UInt64
    var version: UInt64
    var key: [UInt8]
    var type: EntryType
    /// The bytes to put, or `nil` for a delete.
    var bytes: [UInt8]?
    /// The type of an object of the same key to delete after the put (string ↔ term).
    var staleType: EntryType?
}

/// Everything one shard holds; guarded by the shard's lock. Pure state and logic: no I/O, no
/// clock of its own (time comes in as `now`, in milliseconds).
struct ShardState: ~Copyable {
    let settings: EngineSettings
    let dirtyBytes: DirtyBytes
    /// The append-only log changes are appended to (durability `log`), or `nil`.
    let log: AppendOnlyLog?
    /// The lsn of the last change a command appended to the log, for the caller to wait on.
    var pendingLSN: UInt64 = 0
    var slab: Slab
    /// Every entry by id (packed; see ``EntryTable``).
    var meta = EntryTable()
    var freeIds: [UInt32] = []
    /// Open addressing with linear probing: entry id + 1, or 0 for an empty slot.
    var table: [UInt32] = Array(repeating: 0, count: 64)
    var count = 0
    /// Dirty entries by due time (a binary min-heap).
    var due = DueQueue()
    /// Single-flight loads in progress, with the tasks waiting for each.
    var loads: [LoadKey: [CheckedContinuation<LoadSignal, Never>]] = [:]
    /// Tasks waiting for a write of an entry to finish.
    var writeWaiters: [UInt32: [CheckedContinuation<Void, Never>]] = [:]
    var evictions = 0
    var rawBytes = 0
    var storedBytes = 0
    var indexBytes = 0
    var sweepCursor = 0
    var inFlightWrites = 0

    init(settings: EngineSettings, budget: MemoryBudget, dirtyBytes: DirtyBytes, log: AppendOnlyLog?) {
        self.settings = settings
        self.dirtyBytes = dirtyBytes
        self.log = log
        slab = Slab(classes: settings.sizeClasses, budget: budget)
        accountIndex()
    }

    deinit {
        slab.budget.force(-indexBytes)
    }

    // MARK: Index

    /// Finds the live-or-remembered entry of a key.
    func lookup(_ namespace: Namespace, _ key: UnsafeRawBufferPointer, hash: UInt64) -> UInt32? {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let stored = table[slot]
            if stored == 0 { return nil }
            let id = stored - 1
            let entry = meta[packed: Int(id)]
            if entry.hash == hash, entry.namespace == namespace, Int(entry.keyLength) == key.count,
                memcmp(slab.pointer(entry.chunk) + Slab.headerSize, key.baseAddress!, key.count) == 0
            {
                return id
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func tableInsert(_ id: UInt32, hash: UInt64) {
        if (count + 1) * 10 > table.count * 7 { growTable() }
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != 0 { slot = (slot + 1) & mask }
        table[slot] = id + 1
        count += 1
    }

    private mutating func tableRemove(_ id: UInt32, hash: UInt64) {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != id + 1 { slot = (slot + 1) & mask }
        // Backward-shift deletion keeps every probe chain unbroken without tombstones: an
        // entry after the hole moves into it unless its home slot lies cyclically in
        // (hole, next].
        var hole = slot
        var next = slot
        while true {
            next = (next + 1) & mask
            let stored = table[next]
            if stored == 0 { break }
            let home = Int(truncatingIfNeeded: meta[packed: Int(stored - 1)].hash) & mask
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if stays { continue }
            table[hole] = stored
            hole = next
        }
        table[hole] = 0
        count -= 1
    }

    private mutating func growTable() {
        let old = table
        table = Array(repeating: 0, count: old.count * 2)
        let mask = table.count - 1
        for stored in old where stored != 0 {
            var slot = Int(truncatingIfNeeded: meta[packed: Int(stored - 1)].hash) & mask
            while table[slot] != 0 { slot = (slot + 1) & mask }
            table[slot] = stored
        }
        accountIndex()
    }

    /// Brings ``indexBytes`` and the memory budget up to date with what the index holds:
    /// the entry table, the hash table, the free ids and the due queue.
    mutating func accountIndex() {
        let bytes = meta.allocatedBytes + table.count * MemoryLayout<UInt32>.stride
            + freeIds.capacity * MemoryLayout<UInt32>.stride + due.allocatedBytes
        guard bytes != indexBytes else { return }
        slab.budget.force(bytes - indexBytes)
        indexBytes = bytes
    }

    /// The index grows by force (an entry needs its id, slot and queue place even when the
    /// budget is spent). Called when a change of entry `id` made the index grow (rarely: by a
    /// block of ids, a doubling of the hash table or of the due queue): if that took the
    /// budget past its limit, whole pages whose entries may all leave go back to it, so that
    /// slab pages and index together stay within `max_memory` as long as anything can leave.
    private mutating func returnPagesIfOverBudget(protecting id: UInt32) {
        while slab.budget.usedBytes > slab.budget.limit, let page = evictablePage(protecting: id) {
            evictPage(page)
            slab.releasePage(page)
        }
    }

    // MARK: Entries

    /// The key bytes of an entry.
    func key(of id: UInt32) -> [UInt8] {
        let entry = meta[packed: Int(id)]
        let start = slab.pointer(entry.chunk) + Slab.headerSize
        return Array(UnsafeRawBufferPointer(start: start, count: Int(entry.keyLength)))
    }

    /// The value bytes of an entry, decompressed.
    func value(of id: UInt32) -> [UInt8] {
        let entry = meta[packed: Int(id)]
        let start = slab.pointer(entry.chunk) + Slab.headerSize + Int(entry.keyLength)
        let stored = UnsafeRawBufferPointer(start: start, count: Int(entry.storedLength))
        guard entry.flags.contains(.compressed) else { return Array(stored) }
        return [UInt8](unsafeUninitializedCapacity: Int(entry.rawLength)) { buffer, initialized in
            let ok = LZ4Codec.decompress(stored, into: UnsafeMutableRawBufferPointer(buffer))
            precondition(ok, "slab chunk failed to decompress: memory corruption")
            initialized = Int(entry.rawLength)
        }
    }

    /// Creates an entry. Evicts clean entries if memory is needed; fails with
    /// `out_of_memory` when nothing can be evicted.
    mutating func insert(
        namespace: Namespace, type: EntryType, key: UnsafeRawBufferPointer, hash: UInt64,
        value: PreparedValue?, state: EntryState, now: Int64
    ) throws(EngineError) -> UInt32 {
        precondition(Namespace(type) == namespace, "a \(type) entry in the \(namespace) namespace")
        let indexBefore = indexBytes
        let id: UInt32
        if let reused = freeIds.popLast() {
            id = reused
        } else {
            id = meta.append(EntryMeta())
            accountIndex()
        }
        let size = Slab.headerSize + key.count + (value?.storedCount ?? 0)
        guard let chunk = allocateChunk(size: size, owner: id, protecting: nil) else {
            freeIds.append(id)
            throw EngineError(.outOfMemory, "no memory left for the value: every evictable entry is dirty")
        }
        var entry = EntryMeta()
        entry.chunk = chunk.ref
        entry.hash = hash
        entry.keyLength = UInt16(key.count)
        entry.type = type
        entry.state = state
        entry.lastAccess = now
        entry.lastWrite = now
        entry.flags = [.referenced]
        (slab.pointer(chunk.ref) + Slab.headerSize).copyMemory(from: key.baseAddress!, byteCount: key.count)
        meta[Int(id)] = entry
        storeValue(id, value)
        tableInsert(id, hash: hash)
        if indexBytes > indexBefore { returnPagesIfOverBudget(protecting: id) }
        return id
    }

    /// Replaces an entry's value bytes, moving it to a chunk of another size class if needed.
    mutating func replaceValue(_ id: UInt32, _ value: PreparedValue?) throws(EngineError) {
        var entry = meta[Int(id)]
        let size = Slab.headerSize + Int(entry.keyLength) + (value?.storedCount ?? 0)
        let newClass = settings.sizeClasses.index(for: size)!
        if newClass != slab.pageClass[Int(entry.chunk.page)] {
            guard let chunk = allocateChunk(size: size, owner: id, protecting: id) else {
                throw EngineError(.outOfMemory, "no memory left for the value: every evictable entry is dirty")
            }
            let keyStart = Slab.headerSize
            (slab.pointer(chunk.ref) + keyStart).copyMemory(
                from: slab.pointer(entry.chunk) + keyStart, byteCount: Int(entry.keyLength))
            slab.release(entry.chunk)
            entry.chunk = chunk.ref
            meta[Int(id)] = entry
        }
        storeValue(id, value)
    }

    private mutating func storeValue(_ id: UInt32, _ value: PreparedValue?) {
        var entry = meta[Int(id)]
        rawBytes -= Int(entry.rawLength)
        storedBytes -= Int(entry.storedLength)
        let start = slab.pointer(entry.chunk) + Slab.headerSize + Int(entry.keyLength)
        if let value {
            if let compressed = value.compressed {
                compressed.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                entry.flags.insert(.compressed)
            } else {
                value.raw.withUnsafeBytes { bytes in
                    if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
                }
                entry.flags.remove(.compressed)
            }
            entry.storedLength = UInt32(value.storedCount)
            entry.rawLength = UInt32(value.raw.count)
        } else {
            entry.flags.remove(.compressed)
            entry.storedLength = 0
            entry.rawLength = 0
        }
        rawBytes += Int(entry.rawLength)
        storedBytes += Int(entry.storedLength)
        meta[Int(id)] = entry
    }

    /// Drops an entry from memory. It must not be dirty or being written.
    mutating func remove(_ id: UInt32) {
        let entry = meta[packed: Int(id)]
        rawBytes -= Int(entry.rawLength)
        storedBytes -= Int(entry.storedLength)
        tableRemove(id, hash: entry.hash)
        slab.release(entry.chunk)
        // A free id: hash 0, absent, no flags, and no side record.
        var freed = EntryMeta()
        freed.state = .absent
        meta[Int(id)] = freed
        freeIds.append(id)
        accountIndex()
    }

    /// Whether an entry may leave memory now.
    func isEvictable(_ id: UInt32) -> Bool {
        let entry = meta[packed: Int(id)]
        return entry.state != .dirty && !entry.flags.contains(.writing) && !entry.flags.contains(.queued)
            && writeWaiters[id] == nil
    }

    // MARK: Eviction

    private mutating func allocateChunk(size: Int, owner: UInt32, protecting: UInt32?)
        -> (ref: ChunkRef, sizeClass: Int)?
    {
        guard let sizeClass = settings.sizeClasses.index(for: size) else { return nil }
        if let chunk = slab.allocate(sizeClass: sizeClass, owner: owner) {
            return (chunk, sizeClass)
        }
        if evictOne(sizeClass: sizeClass, protecting: protecting),
            let chunk = slab.allocate(sizeClass: sizeClass, owner: owner)
        {
            return (chunk, sizeClass)
        }
        // Free whole pages of any class whose entries may all leave, until the budget has
        // room for a page of this class.
        while let page = evictablePage(protecting: protecting) {
            evictPage(page)
            slab.releasePage(page)
            if let chunk = slab.allocate(sizeClass: sizeClass, owner: owner) {
                return (chunk, sizeClass)
            }
        }
        return nil
    }

    /// CLOCK over one class's chunks: clears reference bits until it finds an evictable
    /// entry, and evicts it. Returns whether a chunk was freed.
    private mutating func evictOne(sizeClass: Int, protecting: UInt32?) -> Bool {
        let pages = slab.classPages[sizeClass]
        guard !pages.isEmpty else { return false }
        // Two sweeps: the first may only clear reference bits.
        for _ in 0..<2 {
            for page in pages {
                for chunk in slab.carvedChunks(ofPage: page) {
                    let owner = slab.owner(chunk)
                    guard owner != Slab.freeOwner, owner != protecting else { continue }
                    if meta[packed: Int(owner)].flags.contains(.referenced) {
                        meta.update(Int(owner)) { $0.flags.remove(.referenced) }
                        continue
                    }
                    if isEvictable(owner) {
                        remove(owner)
                        evictions += 1
                        return true
                    }
                }
            }
        }
        return false
    }

    /// A page whose chunks are all free or evictable, from the class with the most pages.
    func evictablePage(protecting: UInt32?) -> UInt32? {
        let order = slab.classPages.indices.sorted { slab.classPages[$0].count > slab.classPages[$1].count }
        for sizeClass in order {
            for page in slab.classPages[sizeClass] {
                let chunks = slab.carvedChunks(ofPage: page)
                if chunks.allSatisfy({ chunk in
                    let owner = slab.owner(chunk)
                    return owner == Slab.freeOwner || (owner != protecting && isEvictable(owner))
                }) {
                    return page
                }
            }
        }
        return nil
    }

    /// Frees one page for other shards: evicts a page whose entries may all leave and returns
    /// it to the budget. Returns whether one was found.
    mutating func releaseEvictablePage() -> Bool {
        guard let page = evictablePage(protecting: nil) else { return false }
        evictPage(page)
        slab.releasePage(page)
        return true
    }

    /// Evicts every entry of a page.
    mutating func evictPage(_ page: UInt32) {
        for chunk in slab.carvedChunks(ofPage: page) {
            let owner = slab.owner(chunk)
            if owner != Slab.freeOwner {
                remove(owner)
                evictions += 1
            }
        }
    }

    // MARK: Write-back

    /// The moment a dirty entry is due: `flush_delay` after its last change, but no later than
    /// `max_dirty_age` after it became dirty, and never before its backoff ends.
    func dueTime(_ entry: EntryMeta) -> Int64 {
        max(min(entry.lastWrite + settings.flushDelay, entry.dirtySince + settings.maxDirtyAge), entry.retryAfter)
    }

    /// Marks an entry changed: a new version, dirty, queued for write-back, and appended to
    /// the log when there is one (a replayed change carries the lsn it already has).
    mutating func markDirty(_ id: UInt32, now: Int64, oldDirtyBytes: Int, replayedLSN: UInt64? = nil) {
        let indexBefore = indexBytes
        var entry = meta[Int(id)]
        entry.version += 1
        entry.lastWrite = now
        entry.lastAccess = now
        entry.flags.insert(.referenced)
        if let log, entry.type.isPersisted {
            let lsn = replayedLSN ?? log.append(
                type: entry.type, key: key(of: id),
                value: entry.flags.contains(.tombstone) ? nil : value(of: id),
                encoding: entry.flags.contains(.erlangString) ? .erlangString : .bytes)
            entry.lastLSN = lsn
            if entry.state != .dirty { entry.dirtyLSN = lsn }
            if replayedLSN == nil { pendingLSN = lsn }
        }
        if entry.state != .dirty {
            entry.dirtySince = now
            entry.state = .dirty
        }
        if !entry.flags.contains(.queued) {
            entry.flags.insert(.queued)
            due.push(at: dueTime(entry), id)
        }
        dirtyBytes.add(Int(entry.rawLength) - oldDirtyBytes)
        meta[Int(id)] = entry
        accountIndex()
        if indexBytes > indexBefore { returnPagesIfOverBudget(protecting: id) }
    }

    /// Takes up to `limit` entries whose write-back is due (all dirty ones when `force`), and
    /// marks them being written.
    mutating func takeDue(now: Int64, limit: Int, force: Bool) -> [WriteJob] {
        var jobs: [WriteJob] = []
        while jobs.count < limit, let top = due.peek(), force || top.time <= now {
            _ = due.pop()
            let id = top.id
            guard Int(id) < meta.count else { continue }
            var entry = meta[Int(id)]
            guard entry.flags.contains(.queued) else { continue }
            guard entry.state == .dirty else {
                entry.flags.remove(.queued)
                meta[Int(id)] = entry
                continue
            }
            let dueAt = dueTime(entry)
            if !force && dueAt > now {
                due.push(at: dueAt, id)
                continue
            }
            if entry.flags.contains(.writing) {
                // Requeued when the write in flight finishes.
                entry.flags.remove(.queued)
                meta[Int(id)] = entry
                continue
            }
            entry.flags.remove(.queued)
            meta[Int(id)] = entry
            jobs.append(beginWrite(id))
        }
        accountIndex()
        return jobs
    }

    /// Snapshots a dirty entry for writing and marks the write in flight.
    mutating func beginWrite(_ id: UInt32) -> WriteJob {
        var entry = meta[Int(id)]
        entry.flags.insert(.writing)
        entry.writingLSN = entry.lastLSN
        meta[Int(id)] = entry
        inFlightWrites += 1
        let tombstone = entry.flags.contains(.tombstone)
        let stale: EntryType? =
            entry.backendType != EntryMeta.noType && entry.backendType != entry.type.rawValue
            ? EntryType(rawValue: entry.backendType) : nil
        return WriteJob(
            id: id, hash: entry.hash, version: entry.version, key: key(of: id),
            type: tombstone ? (stale ?? entry.type) : entry.type,
            bytes: tombstone ? nil : value(of: id), staleType: tombstone ? nil : stale)
    }

    /// Records the end of a write. Returns the tasks to resume.
    mutating func finishWrite(_ job: WriteJob, succeeded: Bool, now: Int64) -> [CheckedContinuation<Void, Never>] {
        inFlightWrites -= 1
        var entry = meta[Int(job.id)]
        entry.flags.remove(.writing)
        if succeeded {
            entry.attempts = 0
            entry.retryAfter = 0
            entry.persistedVersion = max(entry.persistedVersion, job.version)
            entry.backendType = job.bytes == nil ? EntryMeta.noType : job.type.rawValue
            if entry.version == job.version {
                dirtyBytes.add(-Int(entry.rawLength))
                if entry.flags.contains(.tombstone) {
                    // The delete is in the backend: remember the key as absent for a while.
                    entry.flags.remove(.tombstone)
                    entry.state = .absent
                    entry.lastWrite = now + settings.negativeTTL
                } else {
                    entry.state = .clean
                }
            } else {
                // Changes up to the written version are in the backend; their log records are
                // no longer needed.
                entry.dirtyLSN = entry.writingLSN + 1
            }
        } else {
            entry.attempts = entry.attempts == UInt8.max ? UInt8.max : entry.attempts + 1
            entry.retryAfter = now + settings.backoff(attempt: Int(entry.attempts))
        }
        if entry.state == .dirty && !entry.flags.contains(.queued) {
            entry.flags.insert(.queued)
            meta[Int(job.id)] = entry
            due.push(at: dueTime(entry), job.id)
        } else {
            meta[Int(job.id)] = entry
        }
        accountIndex()
        return writeWaiters.removeValue(forKey: job.id) ?? []
    }

    // MARK: Idle life

    /// Walks up to `budget` entries from where the last sweep stopped: drops clean entries
    /// idle past `idle_ttl` and expired not-found records, and makes idle dirty entries due.
    mutating func sweep(now: Int64, budget: Int) {
        guard !meta.isEmpty else { return }
        for _ in 0..<min(budget, meta.count) {
            if sweepCursor >= meta.count { sweepCursor = 0 }
            let id = UInt32(sweepCursor)
            sweepCursor += 1
            let packed = meta[packed: Int(id)]
            // Freed ids keep a hash of 0; live hashes never are 0 (see CacheStore.hash).
            guard packed.hash != 0 else { continue }
            switch packed.state {
            case .absent:
                if packed.lastWrite <= now, isEvictable(id) { remove(id) }
            case .clean:
                if now - packed.lastAccess >= settings.idleTTL, isEvictable(id) {
                    remove(id)
                    evictions += 1
                }
            case .dirty:
                guard now - packed.lastAccess >= settings.idleTTL, !packed.flags.contains(.writing) else { continue }
                // The backoff may be in the side record.
                var entry = meta[Int(id)]
                if entry.retryAfter <= now {
                    // Idle past idle_ttl: due now, whatever the flush delay says.
                    entry.lastWrite = min(entry.lastWrite, now - settings.flushDelay)
                    entry.flags.insert(.queued)
                    meta[Int(id)] = entry
                    due.push(at: now, id)
                }
            }
        }
        accountIndex()
    }
}

/// What a single-flight load tells the tasks that waited for it.
enum LoadSignal {
    case retry
    case failed(EngineError)
}

/// A key being loaded: its namespace and bytes.
struct LoadKey: Hashable {
    var namespace: Namespace
    var key: [UInt8]
}

/// A binary min-heap of (due time, entry id) in 8 bytes an item: two parallel arrays, the
/// times as 32-bit millisecond offsets from ``base``.
///
/// The offsets span 49 days: a window that starts 24 days before the first time pushed into
/// an empty queue, and moves up when a later time falls beyond it. A time before the window
/// (more than 24 days in the past, so due long ago) is kept as the window's start, still in
/// the past: it pops as due, and the write-back checks the entry's real due time anyway.
struct DueQueue {
    /// Below this many items, the arrays keep their capacity when the queue shrinks.
    private static let keptCapacity = 1024
    /// How far the window reaches back from a time that (re)starts it.
    private static let reach = Int64(1) << 31

    /// The time of offset 0.
    private var base: Int64 = 0
    private var offsets: [UInt32] = []
    private var ids: [UInt32] = []

    var count: Int { offsets.count }

    /// Bytes the queue's arrays hold.
    var allocatedBytes: Int {
        offsets.capacity * MemoryLayout<UInt32>.stride + ids.capacity * MemoryLayout<UInt32>.stride
    }

    func peek() -> (time: Int64, id: UInt32)? {
        guard let offset = offsets.first, let id = ids.first else { return nil }
        return (base + Int64(offset), id)
    }

    mutating func push(at time: Int64, _ id: UInt32) {
        if offsets.isEmpty {
            base = time - Self.reach
        } else if time - base > Int64(UInt32.max) {
            moveWindow(endingAfter: time)
        }
        offsets.append(UInt32(clamping: max(0, time - base)))
        ids.append(id)
        var child = offsets.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if offsets[parent] <= offsets[child] { break }
            swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> (time: Int64, id: UInt32)? {
        guard !offsets.isEmpty else { return nil }
        swapAt(0, offsets.count - 1)
        let top = (time: base + Int64(offsets.removeLast()), id: ids.removeLast())
        var parent = 0
        while true {
            let left = parent * 2 + 1
            let right = left + 1
            var smallest = parent
            if left < offsets.count && offsets[left] < offsets[smallest] { smallest = left }
            if right < offsets.count && offsets[right] < offsets[smallest] { smallest = right }
            if smallest == parent { break }
            swapAt(parent, smallest)
            parent = smallest
        }
        if offsets.count < offsets.capacity / 4 && offsets.capacity > Self.keptCapacity {
            // A burst of dirty entries is written back: give its memory back too.
            offsets = Self.shrunk(offsets)
            ids = Self.shrunk(ids)
        }
        return top
    }

    /// Moves the window up so that `time` falls in it, 24 days from its end. Items that fall
    /// before the new start keep it as their time; the order of the heap holds, since the
    /// new offsets are a non-decreasing function of the old ones.
    private mutating func moveWindow(endingAfter time: Int64) {
        let newBase = time - Self.reach
        for index in offsets.indices {
            offsets[index] = UInt32(clamping: max(0, base + Int64(offsets[index]) - newBase))
        }
        base = newBase
    }

    /// A copy of `array` with room for twice its items (`Array(array)` would share the buffer).
    private static func shrunk<Element>(_ array: [Element]) -> [Element] {
        var copy: [Element] = []
        copy.reserveCapacity(array.count * 2)
        copy.append(contentsOf: array)
        return copy
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        offsets.swapAt(i, j)
        ids.swapAt(i, j)
    }
}
