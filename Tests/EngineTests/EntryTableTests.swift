import Foundation
import Logging
import XCTest
@testable import Engine

/// Asserts that two unpacked entries agree in every field.
private func assertSame(_ actual: EntryMeta, _ expected: EntryMeta, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.chunk, expected.chunk, "chunk", file: file, line: line)
    XCTAssertEqual(actual.hash, expected.hash, "hash", file: file, line: line)
    XCTAssertEqual(actual.version, expected.version, "version", file: file, line: line)
    XCTAssertEqual(actual.persistedVersion, expected.persistedVersion, "persistedVersion", file: file, line: line)
    XCTAssertEqual(actual.lastAccess, expected.lastAccess, "lastAccess", file: file, line: line)
    XCTAssertEqual(actual.lastWrite, expected.lastWrite, "lastWrite", file: file, line: line)
    XCTAssertEqual(actual.dirtySince, expected.dirtySince, "dirtySince", file: file, line: line)
    XCTAssertEqual(actual.retryAfter, expected.retryAfter, "retryAfter", file: file, line: line)
    XCTAssertEqual(actual.storedLength, expected.storedLength, "storedLength", file: file, line: line)
    XCTAssertEqual(actual.rawLength, expected.rawLength, "rawLength", file: file, line: line)
    XCTAssertEqual(actual.keyLength, expected.keyLength, "keyLength", file: file, line: line)
    XCTAssertEqual(actual.type, expected.type, "type", file: file, line: line)
    XCTAssertEqual(actual.state, expected.state, "state", file: file, line: line)
    XCTAssertEqual(actual.flags, expected.flags, "flags", file: file, line: line)
    XCTAssertEqual(actual.attempts, expected.attempts, "attempts", file: file, line: line)
    XCTAssertEqual(actual.backendType, expected.backendType, "backendType", file: file, line: line)
    XCTAssertEqual(actual.dirtyLSN, expected.dirtyLSN, "dirtyLSN", file: file, line: line)
    XCTAssertEqual(actual.lastLSN, expected.lastLSN, "lastLSN", file: file, line: line)
    XCTAssertEqual(actual.writingLSN, expected.writingLSN, "writingLSN", file: file, line: line)
}

/// A dirty entry of a node without the log: the common case of a write not yet written back.
private func dirtyEntry() -> EntryMeta {
    var entry = EntryMeta()
    entry.chunk = ChunkRef(page: 70_000, offset: 65_416)
    entry.hash = 0xDEAD_BEEF_0123_4567
    entry.version = 9
    entry.persistedVersion = 7
    entry.lastAccess = 1_000_123
    entry.lastWrite = 1_000_100
    entry.dirtySince = 999_000
    entry.storedLength = 100
    entry.rawLength = 100
    entry.keyLength = 12
    entry.type = .term
    entry.state = .dirty
    entry.flags = [.referenced, .queued]
    entry.backendType = EntryType.string.rawValue
    return entry
}

final class EntryTableTests: XCTestCase {
    func testThePackedFormsAreSmall() {
        XCTAssertEqual(MemoryLayout<PackedEntry>.stride, 56)
        XCTAssertEqual(MemoryLayout<EntrySideRecord>.stride, 56)
        XCTAssertEqual(EntryTable.blockSize * MemoryLayout<PackedEntry>.stride, 28_672)
    }

    func testAnOrdinaryDirtyOrCleanEntryHasNoSideRecord() {
        var table = EntryTable()
        let dirty = dirtyEntry()
        var clean = dirtyEntry()
        clean.state = .clean
        clean.persistedVersion = clean.version
        clean.flags = []
        var absent = EntryMeta()
        absent.hash = 5
        absent.state = .absent
        absent.lastWrite = -3_000  // a time before the clock's origin
        let ids = [table.append(dirty), table.append(clean), table.append(absent)]
        assertSame(table[Int(ids[0])], dirty)
        assertSame(table[Int(ids[1])], clean)
        assertSame(table[Int(ids[2])], absent)
        XCTAssertEqual(table.sideRecordCount, 0)
        let packed = table[packed: Int(ids[0])]
        XCTAssertEqual(packed.chunk, dirty.chunk)
        XCTAssertEqual(packed.lastAccess, dirty.lastAccess)
        XCTAssertEqual(packed.lastWrite, dirty.lastWrite)
        XCTAssertEqual(packed.namespace, .value)
        XCTAssertTrue(packed.isLive)
    }

    func testEveryFieldSurvivesPackingThroughASideRecord() {
        var table = EntryTable()
        var entry = dirtyEntry()
        entry.flags = [.writing, .compressed, .erlangString, .tombstone]
        entry.persistedVersion = 2
        entry.version = 1 << 40  // a lag far beyond 16 bits
        entry.retryAfter = 1_000_500
        entry.attempts = 3
        entry.dirtyLSN = 11
        entry.lastLSN = 15
        entry.writingLSN = 14
        entry.dirtySince = PackedEntry.timeLimit  // the largest time the packed form holds
        let id = table.append(entry)
        XCTAssertEqual(table.sideRecordCount, 1)
        assertSame(table[Int(id)], entry)
    }

    func testTheSideRecordComesAndGoesWithTheFieldsThatNeedIt() {
        var table = EntryTable()
        var entry = dirtyEntry()
        let id = Int(table.append(entry))

        entry.attempts = 1
        entry.retryAfter = 1_000_200
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 1, "a pending backoff")
        assertSame(table[id], entry)

        entry.attempts = 0
        entry.retryAfter = 0
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 0, "the write succeeded")
        assertSame(table[id], entry)
        let bytes = table.allocatedBytes

        entry.version = entry.persistedVersion + 65_534
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 0, "the largest lag the packed form holds")
        assertSame(table[id], entry)
        entry.version += 1
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 1, "one more version overflows the lag")
        assertSame(table[id], entry)
        XCTAssertEqual(table.allocatedBytes, bytes, "the freed side record was reused")

        entry.version = 3
        entry.persistedVersion = 4
        table[id] = entry
        assertSame(table[id], entry)

        entry.persistedVersion = entry.version
        entry.state = .clean
        entry.flags = []
        entry.dirtyLSN = 20
        entry.lastLSN = 21
        entry.writingLSN = 21
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 0, "a clean entry's lsns are never read again")
        let read = table[id]
        XCTAssertEqual([read.dirtyLSN, read.lastLSN, read.writingLSN], [0, 0, 0])

        entry.state = .dirty
        table[id] = entry
        XCTAssertEqual(table.sideRecordCount, 1, "a dirty entry's lsns are kept")
        assertSame(table[id], entry)
    }

    func testTimesBeyondFortyEightBitsAreClamped() {
        var table = EntryTable()
        var entry = EntryMeta()
        entry.lastAccess = .max
        entry.lastWrite = .min
        let id = Int(table.append(entry))
        XCTAssertEqual(table[id].lastAccess, PackedEntry.timeLimit)
        XCTAssertEqual(table[id].lastWrite, -PackedEntry.timeLimit - 1)
    }

    func testTheTableGrowsByWholeBlocksWithoutMovingEntries() {
        var table = EntryTable()
        XCTAssertEqual(table.allocatedBytes, 0)
        var entry = dirtyEntry()
        for index in 0..<EntryTable.blockSize {
            entry.hash = UInt64(index + 1)
            XCTAssertEqual(table.append(entry), UInt32(index))
        }
        let oneBlock = table.allocatedBytes
        XCTAssertGreaterThanOrEqual(oneBlock, EntryTable.blockSize * 56)
        XCTAssertLessThan(oneBlock, EntryTable.blockSize * 56 + 1024)
        entry.hash = 10_000
        _ = table.append(entry)
        XCTAssertEqual(table.count, EntryTable.blockSize + 1)
        XCTAssertGreaterThanOrEqual(table.allocatedBytes - oneBlock, EntryTable.blockSize * 56)
        XCTAssertLessThan(table.allocatedBytes - oneBlock, EntryTable.blockSize * 56 + 1024)
        XCTAssertEqual(table.map(\.hash), (1...UInt64(EntryTable.blockSize)).map { $0 } + [10_000])
    }

    func testTheDueQueuePopsInTimeOrderAndGivesBackABurstsMemory() {
        var queue = DueQueue()
        var generator = SeededGenerator(state: 7)
        var pushed: [Int64: UInt32] = [:]
        for id in 0..<20_000 {
            let time = 1_000_000 + Int64(generator.next() % 100_000_000) * 8 + Int64(id % 8)
            pushed[time] = UInt32(id)
            queue.push(at: time, UInt32(id))
        }
        XCTAssertEqual(pushed.count, 20_000)
        let peak = queue.allocatedBytes
        XCTAssertGreaterThanOrEqual(peak, 20_000 * 8)
        XCTAssertLessThan(peak, 20_000 * 8 * 2 + 1024)
        var last = Int64.min
        var popped = 0
        while let item = queue.pop() {
            XCTAssertLessThanOrEqual(last, item.time)
            XCTAssertEqual(pushed[item.time], item.id, "times within the window come back exact")
            last = item.time
            popped += 1
        }
        XCTAssertEqual(popped, 20_000)
        XCTAssertLessThan(queue.allocatedBytes, peak / 4, "an emptied queue does not keep a burst's capacity")
    }

    func testTheDueQueueWindowMovesWithTimeAndKeepsTheOrder() {
        var queue = DueQueue()
        let day: Int64 = 86_400_000
        queue.push(at: 100 * day, 1)
        queue.push(at: 100 * day + 5, 2)
        queue.push(at: 200 * day, 3)  // beyond the window's end: the window moves up
        queue.push(at: 200 * day - 7, 4)
        queue.push(at: 10 * day, 5)  // before the window's start: due long ago
        XCTAssertEqual(queue.count, 5)
        let start = queue.peek()!.time
        XCTAssertLessThanOrEqual(start, 200 * day - 24 * day, "the window's start")
        var longDue: Set<UInt32> = []
        for _ in 0..<3 {
            let item = queue.pop()!
            XCTAssertEqual(item.time, start, "due long ago, kept as the window's start")
            longDue.insert(item.id)
        }
        XCTAssertEqual(longDue, [1, 2, 5])
        XCTAssertEqual(queue.pop()?.id, 4)
        let last = queue.pop()!
        XCTAssertEqual(last.id, 3)
        XCTAssertEqual(last.time, 200 * day)
        XCTAssertNil(queue.pop())
        queue.push(at: 3, 6)  // an empty queue starts a new window
        XCTAssertEqual(queue.peek()?.time, 3)
    }
}

/// The side records through an entry's life, on one shard driven with explicit times.
final class EntrySideRecordLifeTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "brain-side-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private let start: Int64 = 1_000_000

    private func makeShard(log: AppendOnlyLog? = nil) -> ShardState {
        var configuration = EngineConfiguration()
        configuration.flushDelay = .seconds(2)
        configuration.maxDirtyAge = .seconds(10)
        configuration.idleTTL = .seconds(60)
        configuration.negativeTTL = .seconds(5)
        return ShardState(
            settings: EngineSettings(configuration), budget: MemoryBudget(limit: 64 << 20),
            dirtyBytes: DirtyBytes(), log: log)
    }

    /// Applies a command on a string key as the store does, loading it as not found first.
    @discardableResult
    private func apply(_ state: inout ShardState, _ command: Command, now: Int64) -> Step {
        let key = command.key
        let hash = CacheStore.hash(.value, key)
        var prepared: PreparedValue? = nil
        if case .set(_, let value, _, _) = command { prepared = PreparedValue(value) }
        return key.withUnsafeBytes { keyBytes in
            var step = state.apply(
                command, key: keyBytes, hash: hash, prepared: prepared, now: now, durability: .memory,
                maxValueBytes: 1_000_000)
            if case .load = step {
                let id = try! state.insert(
                    namespace: .value, type: .string, key: keyBytes, hash: hash, value: nil, state: .absent, now: now)
                state.meta[Int(id)].lastWrite = now + 5_000
                step = state.apply(
                    command, key: keyBytes, hash: hash, prepared: prepared, now: now, durability: .memory,
                    maxValueBytes: 1_000_000)
            }
            return step
        }
    }

    private func set(_ state: inout ShardState, _ key: String, _ value: String, now: Int64) {
        apply(&state, .set(key: Array(key.utf8), value: Array(value.utf8), encoding: .bytes, persist: false), now: now)
    }

    private func id(_ state: borrowing ShardState, _ key: String) -> Int {
        let bytes = Array(key.utf8)
        return bytes.withUnsafeBytes { Int(state.lookup(.value, $0, hash: CacheStore.hash(.value, bytes))!) }
    }

    func testADirtyEntryWithoutTheLogHasNoSideRecordAndCleanIsExact() {
        var state = makeShard()
        set(&state, "k", "v1", now: start)
        set(&state, "k", "v2", now: start + 100)
        let id = id(state, "k")
        var entry = state.meta[id]
        XCTAssertEqual(entry.state, .dirty)
        XCTAssertEqual(entry.version, 2)
        XCTAssertEqual(entry.persistedVersion, 0)
        XCTAssertEqual(entry.dirtySince, start)
        XCTAssertEqual(entry.lastWrite, start + 100)
        XCTAssertEqual(state.meta.sideRecordCount, 0)

        XCTAssertEqual(state.takeDue(now: start + 2_099, limit: 10, force: false).count, 0, "within the flush delay")
        let jobs = state.takeDue(now: start + 2_100, limit: 10, force: false)
        XCTAssertEqual(jobs.map(\.version), [2])
        XCTAssertTrue(state.meta[id].flags.contains(.writing))
        XCTAssertEqual(state.meta.sideRecordCount, 0, "writing needs no side record without the log")
        _ = state.finishWrite(jobs[0], succeeded: true, now: start + 2_200)
        entry = state.meta[id]
        XCTAssertEqual(entry.state, .clean)
        XCTAssertEqual(entry.persistedVersion, 2)
        XCTAssertEqual(entry.backendType, EntryType.string.rawValue)
        XCTAssertFalse(entry.flags.contains(.writing))
        XCTAssertEqual(state.meta.sideRecordCount, 0)
    }

    func testAFailedWriteKeepsItsBackoffInASideRecordUntilAWriteSucceeds() {
        var state = makeShard()
        set(&state, "k", "v", now: start)
        let id = id(state, "k")
        var jobs = state.takeDue(now: start + 2_000, limit: 10, force: false)
        _ = state.finishWrite(jobs[0], succeeded: false, now: start + 2_000)
        var entry = state.meta[id]
        XCTAssertEqual(entry.state, .dirty)
        XCTAssertEqual(entry.attempts, 1)
        XCTAssertTrue((start + 2_050)...(start + 2_100) ~= entry.retryAfter, "\(entry.retryAfter)")
        XCTAssertEqual(entry.dirtySince, start, "dirtySince moved into the side record intact")
        XCTAssertEqual(state.meta.sideRecordCount, 1)

        XCTAssertEqual(state.takeDue(now: entry.retryAfter - 1, limit: 10, force: false).count, 0, "backing off")
        jobs = state.takeDue(now: entry.retryAfter, limit: 10, force: false)
        XCTAssertEqual(jobs.count, 1)
        _ = state.finishWrite(jobs[0], succeeded: false, now: entry.retryAfter)
        XCTAssertEqual(state.meta[id].attempts, 2)
        XCTAssertEqual(state.meta.sideRecordCount, 1)

        jobs = state.takeDue(now: start + 60_000, limit: 10, force: false)
        _ = state.finishWrite(jobs[0], succeeded: true, now: start + 60_000)
        entry = state.meta[id]
        XCTAssertEqual(entry.state, .clean)
        XCTAssertEqual(entry.attempts, 0)
        XCTAssertEqual(entry.retryAfter, 0)
        XCTAssertEqual(state.meta.sideRecordCount, 0, "dirty → clean gives the side record back")
    }

    func testABackoffOutlivesTheDeleteOfAKeyTheBackendNeverHadAndLeavesWithTheEntry() {
        var state = makeShard()
        set(&state, "k", "v", now: start)
        let id = id(state, "k")
        let jobs = state.takeDue(now: start + 2_000, limit: 10, force: false)
        _ = state.finishWrite(jobs[0], succeeded: false, now: start + 2_000)
        let retryAfter = state.meta[id].retryAfter
        apply(&state, .delete(key: Array("k".utf8), persist: false), now: start + 2_010)
        var entry = state.meta[id]
        XCTAssertEqual(entry.state, .absent, "the backend never had it: forgotten at once")
        XCTAssertEqual(entry.attempts, 1, "as before the packed layout, the backoff stays")
        XCTAssertEqual(state.meta.sideRecordCount, 1)

        set(&state, "k", "again", now: start + 2_020)
        entry = state.meta[id]
        XCTAssertEqual(entry.state, .dirty)
        XCTAssertEqual(state.dueTime(entry), max(start + 2_020 + 2_000, retryAfter))

        state.sweep(now: start + 2_020, budget: 10)
        XCTAssertEqual(state.meta.sideRecordCount, 1)
        let written = state.takeDue(now: start + 10_000, limit: 10, force: false)
        _ = state.finishWrite(written[0], succeeded: true, now: start + 10_000)
        apply(&state, .delete(key: Array("k".utf8), persist: false), now: start + 10_000)
        let deletes = state.takeDue(now: start + 20_000, limit: 10, force: false)
        XCTAssertNil(deletes.first?.bytes)
        _ = state.finishWrite(deletes[0], succeeded: false, now: start + 20_000)
        XCTAssertEqual(state.meta.sideRecordCount, 1)
        let retry = state.takeDue(now: start + 30_000, limit: 10, force: false)
        _ = state.finishWrite(retry[0], succeeded: true, now: start + 30_000)
        XCTAssertEqual(state.meta[id].state, .absent)
        XCTAssertEqual(state.meta.sideRecordCount, 0)
        state.sweep(now: start + 40_000, budget: 10)
        XCTAssertEqual(state.meta[id].hash, 0, "the expired not-found record left memory")
        XCTAssertEqual(state.freeIds, [UInt32(id)])
    }

    func testRemovingAnEntryGivesItsSideRecordBack() {
        var state = makeShard()
        set(&state, "k", "v", now: start)
        let id = id(state, "k")
        let jobs = state.takeDue(now: start + 2_000, limit: 10, force: false)
        _ = state.finishWrite(jobs[0], succeeded: false, now: start + 2_000)
        apply(&state, .delete(key: Array("k".utf8), persist: false), now: start + 2_010)
        XCTAssertEqual(state.meta.sideRecordCount, 1)
        state.sweep(now: start + 2_010 + 5_000, budget: 10)
        XCTAssertEqual(state.meta[id].hash, 0)
        XCTAssertEqual(state.meta.sideRecordCount, 0)
    }

    func testTheLogsLSNsLiveInASideRecordWhileDirtyOrWriting() throws {
        let log = try AppendOnlyLog(directory: directory, fsync: .no, logger: Logger(label: "test"))
        try log.start(after: 0)
        defer { log.close(removeSegments: true) }
        var state = makeShard(log: log)
        set(&state, "k", "v1", now: start)
        let id = id(state, "k")
        var entry = state.meta[id]
        XCTAssertGreaterThan(entry.dirtyLSN, 0)
        XCTAssertEqual(entry.lastLSN, entry.dirtyLSN)
        XCTAssertEqual(state.meta.sideRecordCount, 1)
        let firstLSN = entry.dirtyLSN

        let jobs = state.takeDue(now: start + 2_000, limit: 10, force: false)
        XCTAssertEqual(state.meta[id].writingLSN, firstLSN)
        set(&state, "k", "v2", now: start + 2_001)
        entry = state.meta[id]
        XCTAssertGreaterThan(entry.lastLSN, firstLSN)
        XCTAssertEqual(entry.dirtyLSN, firstLSN, "still dirty since the first change")
        _ = state.finishWrite(jobs[0], succeeded: true, now: start + 2_002)
        entry = state.meta[id]
        XCTAssertEqual(entry.state, .dirty, "v2 is not written yet")
        XCTAssertEqual(entry.dirtyLSN, firstLSN + 1, "the record of v1 is no longer needed")
        XCTAssertEqual(entry.persistedVersion, 1)
        XCTAssertEqual(state.meta.sideRecordCount, 1)

        let second = state.takeDue(now: start + 5_000, limit: 10, force: false)
        XCTAssertEqual(second.map(\.version), [2])
        _ = state.finishWrite(second[0], succeeded: true, now: start + 5_000)
        entry = state.meta[id]
        XCTAssertEqual(entry.state, .clean)
        XCTAssertEqual([entry.dirtyLSN, entry.lastLSN, entry.writingLSN], [0, 0, 0])
        XCTAssertEqual(state.meta.sideRecordCount, 0)
    }

    func testAVersionLagBeyondSixteenBitsMovesToASideRecordAndBack() {
        var state = makeShard()
        set(&state, "k", "v", now: start)
        let id = id(state, "k")
        let raw = Int(state.meta[id].rawLength)
        for _ in 1..<65_534 { state.markDirty(UInt32(id), now: start, oldDirtyBytes: raw) }
        XCTAssertEqual(state.meta[id].version, 65_534)
        XCTAssertEqual(state.meta.sideRecordCount, 0)
        state.markDirty(UInt32(id), now: start, oldDirtyBytes: raw)
        XCTAssertEqual(state.meta.sideRecordCount, 1)
        XCTAssertEqual(state.meta[id].persistedVersion, 0)
        XCTAssertEqual(state.meta[id].dirtySince, start)
        let jobs = state.takeDue(now: start + 2_000, limit: 10, force: false)
        XCTAssertEqual(jobs.map(\.version), [65_535])
        _ = state.finishWrite(jobs[0], succeeded: true, now: start + 2_000)
        XCTAssertEqual(state.meta[id].persistedVersion, 65_535)
        XCTAssertEqual(state.meta.sideRecordCount, 0)
    }
}

final class EntryTableStoreTests: XCTestCase {
    private func sideRecords(_ store: CacheStore) -> Int {
        store.shards.reduce(0) { $0 + $1.state.withLock { $0.meta.sideRecordCount } }
    }

    func testSpilledEntriesRestoreDirtyAndLeaveNoSideRecordOnceWritten() async throws {
        let failing = StoreFixture()
        failing.backend.failWrites(BackendError(.unavailable, "down"))
        _ = await failing.store.set("a", "1")
        _ = await failing.store.set("b", "2")
        failing.clock.advance(by: 2_000)
        await failing.flushDue()
        XCTAssertEqual(sideRecords(failing.store), 2, "two backoffs pending")
        var records = failing.store.dirtySnapshot().sorted { $0.key.lexicographicallyPrecedes($1.key) }
        XCTAssertEqual(records.map(\.key), [Array("a".utf8), Array("b".utf8)])
        records.append(SpillRecord(type: .string, key: Array("c".utf8), value: nil))

        let fixture = StoreFixture()
        _ = try await fixture.backend.base.put(
            ObjectKey(type: .string, key: Array("c".utf8)), bytes: Array("old".utf8), condition: .none)
        try fixture.store.restore(records)
        XCTAssertEqual(fixture.store.dirtyCount, 3)
        XCTAssertEqual(sideRecords(fixture.store), 0)
        await fixture.flushDue(force: true)
        XCTAssertEqual(fixture.object(.string, "a"), "1")
        XCTAssertEqual(fixture.object(.string, "b"), "2")
        XCTAssertNil(fixture.object(.string, "c"), "the spilled delete reached the backend")
        XCTAssertEqual(fixture.store.dirtyCount, 0)
        XCTAssertEqual(sideRecords(fixture.store), 0)
    }

    func testIndexBytesCountWhatTheIndexHolds() async {
        let fixture = StoreFixture { $0.shardCount = 1 }
        for index in 0...EntryTable.blockSize {
            _ = await fixture.store.set("key:\(index)", "value")
        }
        let shard = fixture.store.shards[0]
        let (indexBytes, parts, blocks) = shard.state.withLock { state in
            (
                state.indexBytes,
                state.meta.allocatedBytes + state.table.count * 4 + state.freeIds.capacity * 4
                    + state.due.allocatedBytes,
                state.meta.allocatedBytes
            )
        }
        XCTAssertEqual(indexBytes, parts)
        XCTAssertEqual(fixture.store.info().indexBytes, indexBytes)
        XCTAssertEqual(fixture.store.budget.usedBytes, fixture.store.info().slabBytes + indexBytes)
        XCTAssertGreaterThanOrEqual(blocks, 2 * EntryTable.blockSize * 56, "two blocks for 513 entries")
        XCTAssertLessThan(blocks, 3 * EntryTable.blockSize * 56)
    }
}
