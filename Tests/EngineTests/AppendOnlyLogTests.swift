import Foundation
import Logging
import XCTest
@testable import Engine

final class AppendOnlyLogTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "brain-log-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func encode(_ records: [LogRecord]) -> [UInt8] {
        var bytes: [UInt8] = []
        for record in records { record.encode(into: &bytes) }
        return bytes
    }

    func testRecordsRoundTripAndDamageIsDetected() {
        let records = [
            LogRecord(lsn: 1, type: .string, key: [0, 255], value: Array("v".utf8)),
            LogRecord(lsn: 2, type: .hash, key: Array("h".utf8), value: Array("{}".utf8)),
            LogRecord(lsn: 3, type: .term, key: Array("t".utf8), value: nil),
            LogRecord(lsn: 4, type: .string, key: Array("e".utf8), value: [], encoding: .erlangString),
        ]
        let bytes = encode(records)
        var decoded: [LogRecord] = []
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while case .record(let record, let next) = LogRecord.decode(raw, at: offset) {
                decoded.append(record)
                offset = next
            }
            XCTAssertEqual(offset, raw.count)
        }
        XCTAssertEqual(decoded, records)
        // Every cut inside the last record reads as truncated; a flipped bit as damaged.
        for cut in 1..<bytes.count where !decodesWhole(Array(bytes[0..<cut])) {
            Array(bytes[0..<cut]).withUnsafeBytes { raw in
                var offset = 0
                while case .record(_, let next) = LogRecord.decode(raw, at: offset) { offset = next }
                XCTAssertEqual(LogRecord.decode(raw, at: offset), .truncated, "cut at \(cut)")
            }
        }
        var flipped = bytes
        flipped[10] ^= 0x01
        flipped.withUnsafeBytes { raw in
            guard case .damaged = LogRecord.decode(raw, at: 0) else { return XCTFail("a flipped bit went unnoticed") }
        }
    }

    private func decodesWhole(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while case .record(_, let next) = LogRecord.decode(raw, at: offset) { offset = next }
            return offset == raw.count
        }
    }

    func testAppendedChangesAreDurableAndReplayKeepsTheLatestPerKey() async throws {
        for policy in LogFsync.allCases {
            try? FileManager.default.removeItem(atPath: directory)
            let log = try AppendOnlyLog(directory: directory, fsync: policy, logger: Logger(label: "test"))
            try log.start(after: 0)
            var last: UInt64 = 0
            for round in 0..<100 {
                last = log.append(type: .string, key: Array("k\(round % 10)".utf8), value: Array("v\(round)".utf8), encoding: .bytes)
            }
            _ = log.append(type: .string, key: Array("k3".utf8), value: nil, encoding: .bytes)
            let lastLSN = log.append(type: .hash, key: Array("k3".utf8), value: Array("{}".utf8), encoding: .bytes)
            let durable = await log.waitDurable(lastLSN)
            XCTAssertTrue(durable, "\(policy)")
            XCTAssertEqual(last, 100)
            // A crash now: no close. The files alone must give every change back.
            let scan = try AppendOnlyLog.scan(directory: directory)
            XCTAssertEqual(scan.records, 102, "\(policy)")
            XCTAssertEqual(scan.lastLSN, 102)
            XCTAssertNil(scan.damage)
            XCTAssertNil(scan.tornTail)
            let latest = Dictionary(uniqueKeysWithValues: scan.latest.map { ("\($0.type)/\(String(decoding: $0.key, as: UTF8.self))", $0) })
            XCTAssertEqual(latest.count, 11)
            XCTAssertEqual(latest["string/k9"]?.value, Array("v99".utf8))
            XCTAssertEqual(latest["string/k3"]?.value, nil, "the delete came last")
            XCTAssertEqual(latest["hash/k3"]?.value, Array("{}".utf8), "hashes have their own namespace")
            log.close(removeSegments: true)
            XCTAssertEqual(AppendOnlyLog.segmentPaths(in: directory), [])
        }
    }

    func testATornTailIsCutAndDamageInTheMiddleIsRefusedThenRepaired() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let first = encode((1...5).map { LogRecord(lsn: $0, type: .string, key: Array("a\($0)".utf8), value: Array("x".utf8)) })
        let second = encode((6...9).map { LogRecord(lsn: $0, type: .string, key: Array("b\($0)".utf8), value: Array("y".utf8)) })
        let path1 = directory + "/00000000000000000001.brainlog"
        let path2 = directory + "/00000000000000000006.brainlog"
        _ = FileManager.default.createFile(atPath: path1, contents: Data(first))
        _ = FileManager.default.createFile(atPath: path2, contents: Data(second.dropLast(3)))

        var scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertNil(scan.damage)
        let tail = try XCTUnwrap(scan.tornTail)
        XCTAssertEqual(tail.path, path2)
        XCTAssertEqual(scan.records, 8, "the torn ninth record is not counted")
        try AppendOnlyLog.cutTornTail(tail)
        scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertNil(scan.tornTail)
        XCTAssertEqual(scan.records, 8)

        var damaged = first
        damaged[first.count / 2] ^= 0x40
        _ = FileManager.default.createFile(atPath: path1, contents: Data(damaged))
        scan = try AppendOnlyLog.scan(directory: directory)
        let damage = try XCTUnwrap(scan.damage, "damage followed by newer records is not a torn tail")
        XCTAssertEqual(damage.path, path1)
        let setAside = try AppendOnlyLog.repair(damage)
        XCTAssertGreaterThan(setAside, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path1 + ".damaged"))
        scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertNil(scan.damage)
        XCTAssertEqual(scan.records, 2 + 3, "the records before the damage and the (cut) second segment remain")
    }

    func testTheStoreLogsChangesAndCompactsOnceWrittenBack() async throws {
        let log = try AppendOnlyLog(directory: directory, fsync: .always, logger: Logger(label: "test"))
        try log.start(after: 0)
        let fixture = StoreFixture(log: log) { $0.durability = .log }
        for round in 0..<3 {
            let reply = await fixture.store.set("k", "v\(round)")
            XCTAssertEqual(reply, .written(created: round == 0))
        }
        _ = await fixture.store.set("never-persisted", "x")
        _ = await fixture.store.execute(.delete(key: Array("never-persisted".utf8), persist: false))
        _ = await fixture.store.execute(.volatileSet(key: Array("v".utf8), value: Array("not logged".utf8)))
        var scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertEqual(scan.records, 5, "three sets, one set and its delete; volatile values are not logged")
        let byKey = Dictionary(uniqueKeysWithValues: scan.latest.map { (String(decoding: $0.key, as: UTF8.self), $0) })
        XCTAssertEqual(byKey["k"]?.value, Array("v2".utf8))
        XCTAssertNil(byKey["never-persisted"]?.value, "a replay must not bring the deleted value back")

        fixture.clock.advance(by: 3_000)
        await fixture.flushDue()
        fixture.store.compactLog()
        log.waitForWriter()
        _ = await fixture.store.set("later", "y")
        log.close(removeSegments: false)
        scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertEqual(scan.latest.map { String(decoding: $0.key, as: UTF8.self) }, ["later"], "segments holding only written-back changes are gone")
    }

    func testDurabilityLogPerCommandOnAMemoryNodeThatKeepsALog() async throws {
        let log = try AppendOnlyLog(directory: directory, fsync: .always, logger: Logger(label: "test"))
        try log.start(after: 0)
        let fixture = StoreFixture(log: log) { $0.durability = .memory }
        let reply = await fixture.store.execute(
            .set(key: Array("k".utf8), value: Array("logged".utf8), encoding: .bytes, persist: false), durability: .log)
        XCTAssertEqual(reply, .written(created: true))
        // fsync = always: once the reply is out, the record is in the file.
        let scan = try AppendOnlyLog.scan(directory: directory)
        XCTAssertEqual(scan.latest.first?.value, Array("logged".utf8))
        log.close(removeSegments: false)
    }

    func testReplayedChangesAreWrittenBack() async throws {
        let fixture = StoreFixture()
        try fixture.store.replay([
            LogRecord(lsn: 7, type: .string, key: Array("r".utf8), value: Array("replayed".utf8)),
            LogRecord(lsn: 9, type: .hash, key: Array("h".utf8), value: Array(#"{"a":"b"}"#.utf8)),
        ])
        let read = await fixture.store.get("r")
        XCTAssertEqual(read, value("replayed"))
        let clean = await fixture.store.writeBackAll(timeout: .seconds(5)) { _ in }
        XCTAssertTrue(clean)
        XCTAssertEqual(fixture.object(.string, "r"), "replayed")
        XCTAssertEqual(fixture.object(.hash, "h"), #"{"a":"b"}"#)
    }
}
