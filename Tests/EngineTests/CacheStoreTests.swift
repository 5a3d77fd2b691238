import XCTest
@testable import Engine

final class CacheStoreTests: XCTestCase {
    func testSetReportsNewThenExistingAndGetReadsBack() async {
        let fixture = StoreFixture()
        let reply1 = await fixture.store.set("k", "one")
        XCTAssertEqual(reply1, .written(created: true))
        let reply2 = await fixture.store.set("k", "two")
        XCTAssertEqual(reply2, .written(created: false))
        let read = await fixture.store.get("k")
        XCTAssertEqual(read, value("two"))
    }

    func testKeysAndValuesAreValidatedWithNamedErrors() async {
        let fixture = StoreFixture { $0.maxValueBytes = 10 }
        let empty = await fixture.store.get("")
        XCTAssertEqual(empty, .error(EngineError(.emptyKey, "the key is empty")))
        guard case .error(let long) = await fixture.store.get(String(repeating: "k", count: 251)) else { return XCTFail() }
        XCTAssertEqual(long.code, .keyTooLong)
        guard case .error(let large) = await fixture.store.set("k", String(repeating: "v", count: 11)) else { return XCTFail() }
        XCTAssertEqual(large.code, .valueTooLarge)
    }

    func testAKeyOnlyInTheBackendBehavesAsIfInMemory() async throws {
        let fixture = StoreFixture()
        _ = try await fixture.backend.base.put(ObjectKey(type: .string, key: Array("cold".utf8)), bytes: Array("stored".utf8), condition: .none)
        let setReply = await fixture.store.set("cold", "new")
        XCTAssertEqual(setReply, .written(created: false), "set of a key that exists in the backend answers 0")
        let deleted = await fixture.store.execute(.delete(key: Array("other-cold".utf8), persist: false))
        XCTAssertEqual(deleted, .deleted(false))
        let read = await fixture.store.get("cold")
        XCTAssertEqual(read, value("new"))
    }

    func testSimultaneousMissesMakeOneBackendRead() async throws {
        let fixture = StoreFixture()
        _ = try await fixture.backend.base.put(ObjectKey(type: .string, key: Array("hot".utf8)), bytes: Array("v".utf8), condition: .none)
        fixture.backend.holdGets(true)
        let store = fixture.store
        let replies = await withTaskGroup(of: Reply.self) { group in
            for _ in 0..<100 {
                group.addTask { await store.get("hot") }
            }
            while fixture.backend.heldCount == 0 { await Task.yield() }
            // Let the other readers queue behind the load in flight.
            for _ in 0..<200 { await Task.yield() }
            fixture.backend.holdGets(false)
            return await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(replies.count, 100)
        XCTAssertTrue(replies.allSatisfy { $0 == value("v") })
        XCTAssertEqual(fixture.backend.gets, 1)
        XCTAssertEqual(fixture.metrics.backendCount(.get, .ok), 1)
    }

    func testNotFoundIsRememberedBriefly() async {
        let fixture = StoreFixture { $0.negativeTTL = .seconds(5) }
        let first = await fixture.store.get("missing")
        XCTAssertEqual(first, .notFound)
        let readsAfterFirst = fixture.backend.gets
        XCTAssertEqual(readsAfterFirst, 2, "a value key is looked up as a string, then as an Erlang term")
        let second = await fixture.store.get("missing")
        XCTAssertEqual(second, .notFound)
        XCTAssertEqual(fixture.backend.gets, readsAfterFirst, "the second miss is answered from memory")
        fixture.clock.advance(by: 5_000)
        _ = await fixture.store.get("missing")
        XCTAssertEqual(fixture.backend.gets, readsAfterFirst + 2, "after the not-found TTL the backend is asked again")
    }

    func testVolatileValuesNeverReachTheBackend() async {
        let fixture = StoreFixture()
        let created = await fixture.store.execute(.volatileSet(key: Array("v".utf8), value: Array("x".utf8)))
        XCTAssertEqual(created, .written(created: true))
        let read = await fixture.store.execute(.volatileGet(key: Array("v".utf8)))
        XCTAssertEqual(read, value("x", .volatile))
        fixture.clock.advance(by: 100_000)
        await fixture.flushDue(force: true)
        XCTAssertEqual(fixture.backend.puts, 0)
        XCTAssertEqual(fixture.backend.gets, 0)
        let deleted = await fixture.store.execute(.volatileDelete(key: Array("v".utf8)))
        XCTAssertEqual(deleted, .deleted(true))
        let gone = await fixture.store.execute(.volatileGet(key: Array("v".utf8)))
        XCTAssertEqual(gone, .notFound)
    }

    func testHashesKeepFieldsAndPersistAsJSON() async {
        let fixture = StoreFixture()
        let key = Array("h".utf8)
        let created = await fixture.store.execute(.hashSet(key: key, field: Array("a".utf8), value: Array("1".utf8), persist: false))
        XCTAssertEqual(created, .written(created: true))
        _ = await fixture.store.execute(.hashSet(key: key, field: Array("b".utf8), value: Array("two \"quoted\"".utf8), persist: false))
        let replaced = await fixture.store.execute(.hashSet(key: key, field: Array("a".utf8), value: Array("3".utf8), persist: false))
        XCTAssertEqual(replaced, .written(created: false))
        let all = await fixture.store.execute(.hashGet(key: key, fields: []))
        XCTAssertEqual(all, .hash(Array(#"{"a":"3","b":"two \"quoted\""}"#.utf8)))
        let some = await fixture.store.execute(.hashGet(key: key, fields: [Array("b".utf8), Array("zz".utf8)]))
        XCTAssertEqual(some, .hash(Array(#"{"b":"two \"quoted\""}"#.utf8)))
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.object(.hash, "h"), #"{"a":"3","b":"two \"quoted\""}"#)
        let removed = await fixture.store.execute(.hashDelete(key: key, fields: [Array("a".utf8)], persist: true))
        XCTAssertEqual(removed, .deleted(true))
        XCTAssertEqual(fixture.object(.hash, "h"), #"{"b":"two \"quoted\""}"#, "hpdel is in the backend when it answers")
        let whole = await fixture.store.execute(.hashDelete(key: key, fields: [], persist: true))
        XCTAssertEqual(whole, .deleted(true))
        XCTAssertNil(fixture.object(.hash, "h"))
        let none = await fixture.store.execute(.hashGet(key: key, fields: []))
        XCTAssertEqual(none, .notFound)
    }
}

final class WriteBackTests: XCTestCase {
    func testManyWritesToAKeyBecomeOneBackendWriteOfTheLatestValue() async {
        let fixture = StoreFixture()
        for round in 1...20 {
            _ = await fixture.store.set("k", "v\(round)")
            fixture.clock.advance(by: 50)
        }
        await fixture.flushDue()
        XCTAssertEqual(fixture.backend.puts, 0, "still within the flush delay of the last write")
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.backend.puts, 1)
        XCTAssertEqual(fixture.object(.string, "k"), "v20")
        XCTAssertEqual(fixture.store.dirtyCount, 0)
    }

    func testMaxDirtyAgeWritesAKeyThatNeverRests() async {
        let fixture = StoreFixture()
        var written = -1
        for second in 0..<12 {
            _ = await fixture.store.set("busy", "v\(second)")
            fixture.clock.advance(by: 1_000)
            await fixture.flushDue()
            if written < 0 && fixture.backend.puts > 0 { written = second }
        }
        XCTAssertEqual(written, 9, "written once dirty for max_dirty_age (10 s) although changed every second")
    }

    func testSetThenDeleteEndsWithNoObject() async {
        let fixture = StoreFixture()
        _ = await fixture.store.set("k", "v")
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.object(.string, "k"), "v")
        _ = await fixture.store.set("k", "v2")
        let deleted = await fixture.store.execute(.delete(key: Array("k".utf8), persist: false))
        XCTAssertEqual(deleted, .deleted(true))
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertNil(fixture.object(.string, "k"))
        XCTAssertEqual(fixture.backend.puts, 1, "the intermediate v2 was never written")
        let read = await fixture.store.get("k")
        XCTAssertEqual(read, .notFound)
    }

    func testAChangeDuringAWriteIsWrittenAfterIt() async {
        let fixture = StoreFixture()
        _ = await fixture.store.set("k", "old")
        fixture.clock.advance(by: 2_000)
        let jobs = fixture.store.takeDueJobs(limit: 10, force: false, startShard: 0)
        XCTAssertEqual(jobs.count, 1)
        _ = await fixture.store.set("k", "new")
        for (job, shard) in jobs { await fixture.store.run(job, on: shard) }
        XCTAssertEqual(fixture.object(.string, "k"), "old")
        XCTAssertEqual(fixture.store.dirtyCount, 1, "the newer version is still dirty")
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.object(.string, "k"), "new")
        XCTAssertEqual(fixture.store.dirtyCount, 0)
    }

    func testFailuresAreRetriedWithBackoffUntilTheBackendReturns() async {
        let fixture = StoreFixture()
        _ = await fixture.store.set("k", "v")
        fixture.backend.base.setFailure(BackendError(.unavailable, "down"))
        fixture.clock.advance(by: 2_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.backend.puts, 1)
        await fixture.flushDue()
        XCTAssertEqual(fixture.backend.puts, 1, "no retry before the backoff ends")
        let read = await fixture.store.get("k")
        XCTAssertEqual(read, value("v"), "readers of a key in memory are not blocked by the outage")
        fixture.backend.base.setFailure(nil)
        fixture.clock.advance(by: 30_000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.object(.string, "k"), "v")
        XCTAssertEqual(fixture.store.dirtyCount, 0)
        XCTAssertEqual(fixture.metrics.backendCount(.put, .error), 1)
        XCTAssertEqual(fixture.metrics.backendCount(.put, .ok), 1)
    }

    func testPersistNowAnswersAfterTheBackendAcknowledged() async {
        let fixture = StoreFixture()
        let reply = await fixture.store.set("p", "now", persist: true)
        XCTAssertEqual(reply, .persisted(true))
        XCTAssertEqual(fixture.object(.string, "p"), "now")
        let erlangPersist = await fixture.store.execute(.persist(key: Array("p".utf8)))
        XCTAssertEqual(erlangPersist, .persisted(true))
    }

    func testPersistNowFailsClearlyAndKeepsTheChange() async {
        let fixture = StoreFixture { $0.persistTimeout = .zero }
        fixture.backend.failWrites(BackendError(.unavailable, "down"))
        let reply = await fixture.store.set("p", "kept", persist: true)
        XCTAssertEqual(reply, .persisted(false))
        let read = await fixture.store.get("p")
        XCTAssertEqual(read, value("kept"))
        XCTAssertEqual(fixture.store.dirtyCount, 1)
    }

    func testDurabilityBackendAcknowledgesOnlyWhatTheBackendHolds() async {
        let fixture = StoreFixture { $0.durability = .backend }
        let reply = await fixture.store.set("d", "v")
        XCTAssertEqual(reply, .written(created: true))
        XCTAssertEqual(fixture.object(.string, "d"), "v")
    }

    func testADurabilityOverrideAppliesToOneCommand() async {
        let fixture = StoreFixture()
        let k = Array("k".utf8)
        let logged = await fixture.store.execute(
            .set(key: k, value: Array("now".utf8), encoding: .bytes, persist: false), durability: .backend)
        XCTAssertEqual(logged, .written(created: true))
        XCTAssertEqual(fixture.object(.string, "k"), "now", "durability=backend replies once the backend holds it")
        _ = await fixture.store.set("k", "later")
        XCTAssertEqual(fixture.object(.string, "k"), "now", "the node's own durability (memory) applies again")
        let deleted = await fixture.store.execute(.delete(key: k, persist: false), durability: .backend)
        XCTAssertEqual(deleted, .deleted(true))
        XCTAssertNil(fixture.object(.string, "k"))

        let memoryNode = StoreFixture { $0.durability = .backend }
        _ = await memoryNode.store.execute(
            .hashSet(key: k, field: Array("f".utf8), value: Array("v".utf8), persist: false), durability: .memory)
        XCTAssertNil(memoryNode.object(.hash, "k"), "durability=memory on a backend node does not wait")
        await memoryNode.flushDue(force: true)
        XCTAssertEqual(memoryNode.object(.hash, "k"), #"{"f":"v"}"#)
    }

    func testExecuteNowAnswersHitsAndMemoryWritesAndLeavesTheRestUntouched() async throws {
        let fixture = StoreFixture()
        let k = Array("k".utf8)
        // A new key's write must first ask the backend whether it exists (to answer 1 or 0).
        XCTAssertNil(fixture.store.executeNow(.set(key: k, value: Array("v".utf8), encoding: .bytes, persist: false), durability: nil))
        XCTAssertEqual(fixture.store.executeNow(.get(key: k), durability: nil), nil)
        _ = await fixture.store.set("k", "old")
        XCTAssertEqual(
            fixture.store.executeNow(.set(key: k, value: Array("v".utf8), encoding: .bytes, persist: false), durability: nil),
            .written(created: false))
        XCTAssertEqual(fixture.store.executeNow(.get(key: k), durability: nil), value("v"))
        // A miss must read the backend: nil, and nothing changed.
        _ = try await fixture.backend.base.put(ObjectKey(type: .string, key: Array("cold".utf8)), bytes: Array("c".utf8), condition: .none)
        XCTAssertNil(fixture.store.executeNow(.get(key: Array("cold".utf8)), durability: nil))
        // Persist-now and durability=backend writes wait for the backend: nil, nothing changed.
        XCTAssertNil(fixture.store.executeNow(.set(key: k, value: Array("p".utf8), encoding: .bytes, persist: true), durability: nil))
        XCTAssertNil(fixture.store.executeNow(.delete(key: k, persist: false), durability: .backend))
        XCTAssertNil(fixture.store.executeNow(.persist(key: k), durability: nil))
        XCTAssertEqual(fixture.store.executeNow(.get(key: k), durability: nil), value("v"))
        XCTAssertNil(fixture.object(.string, "k"))
        // Bad input is answered at once.
        XCTAssertEqual(fixture.store.executeNow(.get(key: []), durability: nil), .error(EngineError(.emptyKey, "the key is empty")))
        let cold = await fixture.store.get("cold")
        XCTAssertEqual(cold, value("c"))
    }

    func testADurabilityOverrideThatDoesNotApplyIsRefused() async {
        let fixture = StoreFixture()
        let k = Array("k".utf8)
        let cases: [(Command, Durability, String)] = [
            (.get(key: k), .backend, "durability applies only to commands that change strings, terms or hashes"),
            (.volatileSet(key: k, value: [1]), .backend, "durability applies only to commands that change strings, terms or hashes"),
            (.set(key: k, value: [1], encoding: .bytes, persist: true), .memory, "a persist-now command (pset, pdel, hpsetkv, hpdel) always waits for the backend; durability=memory does not apply"),
            (.set(key: k, value: [1], encoding: .bytes, persist: false), .log, "durability=log needs the append-only log, which this node does not keep (durability = memory)"),
        ]
        for (command, durability, message) in cases {
            let reply = await fixture.store.execute(command, durability: durability)
            guard case .error(let error) = reply else {
                XCTFail("\(command) with \(durability): \(reply)")
                continue
            }
            XCTAssertEqual(error.code, .badOption)
            XCTAssertTrue(error.message.hasPrefix(message), error.message)
        }
        let unchanged = await fixture.store.get("k")
        XCTAssertEqual(unchanged, .notFound, "a refused command changes nothing")
        let persisted = await fixture.store.execute(
            .set(key: k, value: [1], encoding: .bytes, persist: true), durability: .backend)
        XCTAssertEqual(persisted, .persisted(true), "backend on a persist-now command only repeats it")
    }

    func testTheDirtyLimitRefusesWritesAndRecovers() async {
        let fixture = StoreFixture { $0.maxDirtyBytes = 1000 }
        fixture.backend.failWrites(BackendError(.unavailable, "down"))
        var refused: EngineError? = nil
        for index in 0..<50 {
            if case .error(let error) = await fixture.store.set("k\(index)", String(repeating: "x", count: 100)) {
                refused = error
                break
            }
        }
        XCTAssertEqual(refused?.code, .dirtyLimit)
        XCTAssertTrue(refused?.message.contains("max_dirty_bytes") ?? false)
        let read = await fixture.store.get("k0")
        XCTAssertEqual(read, value(String(repeating: "x", count: 100)))
        fixture.backend.failWrites(nil)
        fixture.clock.advance(by: 60_000)
        await fixture.flushDue()
        let accepted = await fixture.store.set("after", "ok")
        XCTAssertEqual(accepted, .written(created: true))
    }

    func testAStringReplacingATermRemovesTheTermObject() async {
        let fixture = StoreFixture()
        _ = await fixture.store.execute(.setTerm(key: Array("k".utf8), externalTermFormat: [131, 100, 0, 2, 111, 107], persist: true))
        XCTAssertNotNil(fixture.object(.term, "k"))
        _ = await fixture.store.set("k", "plain", persist: true)
        XCTAssertEqual(fixture.object(.string, "k"), "plain")
        XCTAssertNil(fixture.object(.term, "k"))
    }
}

final class EntryLifeTests: XCTestCase {
    func testIdleEntriesAreWrittenBackThenLeaveMemory() async {
        let fixture = StoreFixture { $0.flushDelay = .seconds(100); $0.maxDirtyAge = .seconds(100); $0.idleTTL = .seconds(10) }
        _ = await fixture.store.set("idle", "v")
        fixture.clock.advance(by: 10_000)
        fixture.store.sweep(budgetPerShard: 1000)
        await fixture.flushDue()
        XCTAssertEqual(fixture.object(.string, "idle"), "v", "written back after idle_ttl without access")
        XCTAssertEqual(fixture.store.info().keys[.string]?.clean, 1)
        fixture.clock.advance(by: 10_000)
        fixture.store.sweep(budgetPerShard: 1000)
        XCTAssertNil(fixture.store.info().keys[.string], "dropped after another idle_ttl")
        let gets = fixture.backend.gets
        let read = await fixture.store.get("idle")
        XCTAssertEqual(read, value("v"))
        XCTAssertEqual(fixture.backend.gets, gets + 1, "reloaded from the backend")
    }

    func testEvictionKeepsMemoryBoundedAndEveryRecordReadable() async {
        let fixture = StoreFixture { $0.maxMemory = 4 << 20; $0.maxDirtyBytes = 1 << 20 }
        var generator = SystemRandomNumberGenerator()
        var records: [String: String] = [:]
        for index in 0..<6000 {
            let text = (0..<1500).map { _ in String(UInt8.random(in: 0...9, using: &generator)) }.joined()
            records["r\(index)"] = text
            let reply = await fixture.store.set("r\(index)", text)
            XCTAssertEqual(reply, .written(created: true), "record \(index)")
            if index % 200 == 0 {
                fixture.clock.advance(by: 3_000)
                await fixture.flushDue()
            }
        }
        fixture.clock.advance(by: 3_000)
        await fixture.flushDue()
        let info = fixture.store.info()
        XCTAssertGreaterThan(info.evictions, 0)
        XCTAssertLessThanOrEqual(info.slabBytes + info.indexBytes, 4 << 20)
        for (key, text) in records {
            let reply = await fixture.store.get(key)
            XCTAssertEqual(reply, value(text), key)
        }
        XCTAssertLessThanOrEqual(fixture.store.info().slabBytes + fixture.store.info().indexBytes, 4 << 20)
    }

    func testDirtyEntriesAreNeverEvicted() async {
        // The clock never moves, so nothing is written back: every value stays dirty.
        let fixture = StoreFixture { $0.maxMemory = 4 << 20; $0.maxDirtyBytes = 64 << 20 }
        var acknowledged: [String] = []
        var generator = SystemRandomNumberGenerator()
        for index in 0..<10_000 {
            // Random digits: LZ4 cannot shrink them much, so memory really fills.
            let text = (0..<1000).map { _ in String(UInt8.random(in: 0...9, using: &generator)) }.joined()
            let reply = await fixture.store.set("d\(index)", text)
            if case .written = reply {
                acknowledged.append("d\(index)")
            } else {
                guard case .error(let error) = reply else { return XCTFail("\(reply)") }
                XCTAssertEqual(error.code, .outOfMemory)
                break
            }
        }
        XCTAssertGreaterThan(acknowledged.count, 100)
        XCTAssertLessThan(acknowledged.count, 10_000)
        let info = fixture.store.info()
        XCTAssertLessThanOrEqual(info.slabBytes + info.indexBytes, 4 << 20)
        XCTAssertEqual(info.evictions, 0)
        for key in acknowledged {
            guard case .value = await fixture.store.get(key) else { return XCTFail("lost \(key)") }
        }
    }

    func testValuesAreCompressedInSlabs() async {
        let fixture = StoreFixture()
        for index in 0..<500 {
            let record = #"{"id":\#(index),"name":"user\#(index)","inventory":["sword","shield","potion","potion"],"guild":"the knights of the round table","score":\#(index * 7)}"#
            _ = await fixture.store.set("u\(index)", String(repeating: record, count: 8))
        }
        let info = fixture.store.info()
        XCTAssertLessThan(Double(info.storedValueBytes), Double(info.rawValueBytes) * 0.6)
        XCTAssertGreaterThan(info.compressionRatio, 1.6)
    }
}

final class SpillTests: XCTestCase {
    func testSpillFilesRoundTripAndDetectDamage() throws {
        let records = [
            SpillRecord(type: .string, key: [0, 1, 2], value: Array("v".utf8)),
            SpillRecord(type: .hash, key: Array("h".utf8), value: Array("{}".utf8)),
            SpillRecord(type: .term, key: Array("t".utf8), value: nil),
            SpillRecord(type: .string, key: Array("e".utf8), value: [], encoding: .erlangString),
        ]
        let bytes = SpillFile.encode(records)
        XCTAssertEqual(try SpillFile.decode(bytes), records)
        var damaged = bytes
        damaged[12] ^= 0x40
        XCTAssertThrowsError(try SpillFile.decode(damaged))
        XCTAssertThrowsError(try SpillFile.decode(Array(bytes.dropLast())))
    }

    func testRestoredEntriesAreWrittenBack() async throws {
        let fixture = StoreFixture()
        _ = try await fixture.backend.base.put(ObjectKey(type: .string, key: Array("gone".utf8)), bytes: [1], condition: .none)
        try fixture.store.restore([
            SpillRecord(type: .string, key: Array("k".utf8), value: Array("spilled".utf8)),
            SpillRecord(type: .string, key: Array("gone".utf8), value: nil),
        ])
        let clean = await fixture.store.writeBackAll(timeout: .seconds(5)) { _ in }
        XCTAssertTrue(clean)
        XCTAssertEqual(fixture.object(.string, "k"), "spilled")
        XCTAssertNil(fixture.object(.string, "gone"))
    }
}
