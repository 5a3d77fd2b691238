#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import XCTest

@testable import Server

// MARK: - Reply parsing

final class BenchReplyParserTests: XCTestCase {
    private func parse(_ wire: WireProtocol, _ text: String) -> ParseOutcome {
        ReplyParser(wire: wire).parse(Array(text.utf8))
    }

    /// Every proper prefix of `text` is incomplete, and the whole parses to `expected`,
    /// consuming all of it: a reply cut anywhere by the network parses once it is whole.
    private func assertWhole(_ wire: WireProtocol, _ text: String, _ expected: BenchReply, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        let parser = ReplyParser(wire: wire)
        for cut in 0..<bytes.count {
            XCTAssertEqual(parser.parse(Array(bytes[0..<cut])), .incomplete, "prefix of \(cut) bytes", file: file, line: line)
        }
        XCTAssertEqual(parser.parse(bytes), .reply(expected, consumed: bytes.count), file: file, line: line)
    }

    func testBrainReplies() {
        assertWhole(.brain, "1\r\n", .stored)
        assertWhole(.brain, "0\r\n", .stored)
        assertWhole(.brain, "-hello world\r\n", .value(length: 11))
        assertWhole(.brain, "-\r\n", .value(length: 0))
        assertWhole(.brain, "-null\r\n", .value(length: 4))
        assertWhole(.brain, "null\r\n", .missing)
        assertWhole(.brain, "error dirty_limit: the write-back backlog is full\r\n", .error(code: "dirty_limit"))
        assertWhole(.brain, "error too_many_connections\r\n", .error(code: "too_many_connections"))
    }

    func testBrainRepliesArriveOneAfterAnother() {
        let bytes = Array("1\r\n-abc\r\nnull\r\n-par".utf8)
        let parser = ReplyParser(wire: .brain)
        var start = 0
        var seen: [BenchReply] = []
        while case .reply(let reply, let consumed) = parser.parse(Array(bytes[start...])) {
            seen.append(reply)
            start += consumed
        }
        XCTAssertEqual(seen, [.stored, .value(length: 3), .missing])
        XCTAssertEqual(Array(bytes[start...]), Array("-par".utf8), "the cut reply waits for its end")
    }

    func testBrainRejectsWhatIsNoReply() {
        XCTAssertEqual(parse(.brain, "1\n"), .malformed(detail: "a reply line does not end with \\r\\n"))
        XCTAssertEqual(parse(.brain, "STORED\r\n"), .malformed(detail: "unexpected reply 'STORED'"))
        XCTAssertEqual(parse(.brain, "2\r\n"), .malformed(detail: "unexpected reply '2'"))
        XCTAssertEqual(parse(.brain, "\u{1}x\r\n"), .malformed(detail: "unexpected reply '\\x01x'"))
    }

    func testMemcachedReplies() {
        assertWhole(.memcached, "STORED\r\n", .stored)
        assertWhole(.memcached, "END\r\n", .missing)
        assertWhole(.memcached, "VALUE key:00000001 0 5\r\nhello\r\nEND\r\n", .value(length: 5))
        assertWhole(.memcached, "VALUE k 0 5 77\r\nhello\r\nEND\r\n", .value(length: 5))
        // The data is taken by its length: an END inside it ends nothing.
        assertWhole(.memcached, "VALUE k 0 7\r\n\r\nEND\r\n\r\nEND\r\n", .value(length: 7))
        assertWhole(.memcached, "SERVER_ERROR out of memory storing object\r\n", .error(code: "SERVER_ERROR out of memory storing object"))
        assertWhole(.memcached, "CLIENT_ERROR bad data chunk\r\n", .error(code: "CLIENT_ERROR bad data chunk"))
        assertWhole(.memcached, "ERROR\r\n", .error(code: "ERROR"))
        assertWhole(.memcached, "NOT_STORED\r\n", .error(code: "NOT_STORED"))
    }

    func testMemcachedRejectsWhatIsNoReply() {
        XCTAssertEqual(parse(.memcached, "VALUE k 0 x\r\n"), .malformed(detail: "bad VALUE line 'VALUE k 0 x'"))
        XCTAssertEqual(parse(.memcached, "VALUE k 0\r\n"), .malformed(detail: "bad VALUE line 'VALUE k 0'"))
        XCTAssertEqual(parse(.memcached, "VALUE k 0 1 2 3\r\n"), .malformed(detail: "bad VALUE line 'VALUE k 0 1 2 3'"))
        XCTAssertEqual(parse(.memcached, "VALUE k 0 2\r\nabcdEND\r\n"),
                       .malformed(detail: "a value of 2 bytes is not followed by \\r\\nEND\\r\\n"))
        XCTAssertEqual(parse(.memcached, "1\r\n"), .malformed(detail: "unexpected reply '1'"))
    }

    func testRedisReplies() {
        assertWhole(.redis, "+OK\r\n", .stored)
        assertWhole(.redis, "$-1\r\n", .missing)
        assertWhole(.redis, "$5\r\nhe\r\no\r\n", .value(length: 5))
        assertWhole(.redis, "$0\r\n\r\n", .value(length: 0))
        assertWhole(.redis, "-OOM command not allowed\r\n", .error(code: "OOM command not allowed"))
    }

    func testRedisRejectsWhatIsNoReply() {
        XCTAssertEqual(parse(.redis, ":1\r\n"), .malformed(detail: "unexpected reply ':1'"))
        XCTAssertEqual(parse(.redis, "$x\r\n"), .malformed(detail: "bad bulk string header '$x'"))
        XCTAssertEqual(parse(.redis, "$2\r\nabcd"), .malformed(detail: "a bulk string of 2 bytes is not followed by \\r\\n"))
    }
}

// MARK: - Requests and values

final class BenchRequestTests: XCTestCase {
    private let pool = ValuePool(kind: .random, sizes: 5...5, count: 4, seed: 7)

    private func text(_ build: (inout [UInt8]) -> Void) -> String {
        var bytes: [UInt8] = []
        build(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    func testKeysHaveOneWidthPerRun() {
        XCTAssertEqual(KeyFormat(keyCount: 100_000).key(42), "key:00000042")
        XCTAssertEqual(KeyFormat(keyCount: 100_000).key(0), "key:00000000")
        XCTAssertEqual(KeyFormat(keyCount: 100_000_000).key(99_999_999), "key:99999999")
        XCTAssertEqual(KeyFormat(keyCount: 100_000_001).key(7), "key:000000007")
        XCTAssertEqual(KeyFormat(keyCount: 1).length, 12)
    }

    func testEachProtocolCarriesTheSameKeyAndValue() {
        let value = String(decoding: pool.value(2), as: UTF8.self)
        let keys = KeyFormat(keyCount: 10)
        let brain = RequestEncoder(wire: .brain, keys: keys, values: pool)
        let memcached = RequestEncoder(wire: .memcached, keys: keys, values: pool)
        let redis = RequestEncoder(wire: .redis, keys: keys, values: pool)
        XCTAssertEqual(text { brain.appendGet(key: 3, to: &$0) }, "get key:00000003\n")
        XCTAssertEqual(text { brain.appendSet(key: 3, value: 2, to: &$0) }, "set key:00000003 \(value)\n")
        XCTAssertEqual(text { memcached.appendGet(key: 3, to: &$0) }, "get key:00000003\r\n")
        XCTAssertEqual(text { memcached.appendSet(key: 3, value: 2, to: &$0) }, "set key:00000003 0 0 5\r\n\(value)\r\n")
        XCTAssertEqual(text { redis.appendGet(key: 3, to: &$0) }, "*2\r\n$3\r\nGET\r\n$12\r\nkey:00000003\r\n")
        XCTAssertEqual(text { redis.appendSet(key: 3, value: 2, to: &$0) }, "*3\r\n$3\r\nSET\r\n$12\r\nkey:00000003\r\n$5\r\n\(value)\r\n")
    }

    func testDecimals() {
        XCTAssertEqual(text { RequestEncoder.appendDecimal(0, to: &$0) }, "0")
        XCTAssertEqual(text { RequestEncoder.appendDecimal(9, to: &$0) }, "9")
        XCTAssertEqual(text { RequestEncoder.appendDecimal(10, to: &$0) }, "10")
        XCTAssertEqual(text { RequestEncoder.appendDecimal(1_000_000, to: &$0) }, "1000000")
    }

    func testValuesAreDeterminedByTheSeed() {
        for kind in ValueKind.allCases {
            let one = ValuePool(kind: kind, sizes: 100...2048, count: 64, seed: 1)
            let again = ValuePool(kind: kind, sizes: 100...2048, count: 64, seed: 1)
            let other = ValuePool(kind: kind, sizes: 100...2048, count: 64, seed: 2)
            XCTAssertEqual((0..<64).map { Array(one.value($0)) }, (0..<64).map { Array(again.value($0)) }, "\(kind)")
            XCTAssertNotEqual((0..<64).map { Array(one.value($0)) }, (0..<64).map { Array(other.value($0)) }, "\(kind)")
        }
    }

    func testRandomValuesAreLettersAndDigitsOfTheAskedLengths() {
        let pool = ValuePool(kind: .random, sizes: 90...110, count: 500, seed: 3)
        var lengths = Set<Int>()
        for index in 0..<pool.count {
            let value = Array(pool.value(index))
            lengths.insert(value.count)
            XCTAssertTrue(value.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) })
        }
        XCTAssertEqual(lengths.min(), 90)
        XCTAssertEqual(lengths.max(), 110)
        XCTAssertEqual(ValuePool(kind: .random, sizes: 100...100, count: 3, seed: 3).totalBytes, 300)
    }

    func testJSONValuesAreUserRecordsOfExactLength() throws {
        for sizes in (40...400).map({ $0...$0 }) + [1024...2048, 2048...2048] {
            let pool = ValuePool(kind: .json, sizes: sizes, count: sizes.count == 1 ? 4 : 50, seed: 9)
            for index in 0..<pool.count {
                let value = Array(pool.value(index))
                XCTAssertTrue(sizes.contains(value.count), "length \(value.count) outside \(sizes)")
                // Nothing Brain's line protocol would escape: the bytes travel raw everywhere.
                XCTAssertTrue(value.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") })
                let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(value)) as? [String: Any])
                XCTAssertEqual(object["id"] as? Int, index)
                XCTAssertNotNil(object["notes"] as? String)
                if sizes.lowerBound >= 1024 {
                    XCTAssertNotNil(object["email"] as? String)
                    XCTAssertFalse(try XCTUnwrap(object["inventory"] as? [[String: Any]]).isEmpty)
                }
            }
        }
    }
}

// MARK: - Options

final class BenchOptionTests: XCTestCase {
    private func settings(_ arguments: [String], environment: [String: String] = [:]) throws -> BenchSettings {
        try Bench.parse(arguments).settings(environment: environment)
    }

    private func assertInvalid(_ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try settings(arguments), file: file, line: line) { error in
            XCTAssertEqual(error as? BenchError, BenchError(.invalidOption, message), file: file, line: line)
        }
    }

    func testDefaults() throws {
        let defaults = try settings([])
        XCTAssertEqual(defaults.host, "127.0.0.1")
        XCTAssertEqual(defaults.port, 3697)
        XCTAssertEqual(defaults.wire, .brain)
        XCTAssertEqual(defaults.connections, 50)
        XCTAssertEqual(defaults.pipeline, 1)
        XCTAssertEqual(defaults.keys, 100_000)
        XCTAssertEqual(defaults.valueSizes, 100...100)
        XCTAssertEqual(defaults.workload, .mix(ratio: .init(gets: 9, sets: 1), stop: .duration(10_000_000_000)))
        XCTAssertFalse(defaults.warmup)
        XCTAssertEqual(try settings(["--protocol", "memcached"]).port, 11211)
        XCTAssertEqual(try settings(["--protocol", "redis"]).port, 6379)
        XCTAssertEqual(try settings(["--protocol", "memcached", "--port", "5000"]).port, 5000)
    }

    func testMixOptions() throws {
        let mix = try settings(["--ratio", "1:0", "--requests", "5000", "--value-size", "1kb-2kb", "--value-kind", "json", "--keys", "7"])
        XCTAssertEqual(mix.workload, .mix(ratio: .init(gets: 1, sets: 0), stop: .requests(5000)))
        XCTAssertEqual(mix.valueSizes, 1024...2048)
        XCTAssertEqual(mix.valueKind, .json)
        XCTAssertEqual(mix.keys, 7)
        XCTAssertEqual(try settings(["--duration", "500ms"]).workload, .mix(ratio: .init(gets: 9, sets: 1), stop: .duration(500_000_000)))
        XCTAssertEqual(try settings(["--warmup", "--requests", "0"]).workload, .mix(ratio: .init(gets: 9, sets: 1), stop: .requests(0)))
    }

    func testSessionOptions() throws {
        let sessions = try settings(["--workload", "sessions", "--users", "300", "--updates", "5", "--session-time", "2s", "--ramp", "1s"])
        XCTAssertEqual(sessions.workload, .sessions(SessionPlan(users: 300, updates: 5, sessionTime: 2_000_000_000, ramp: 1_000_000_000)))
        XCTAssertEqual(sessions.keys, 300)
        XCTAssertEqual(try settings(["--workload", "sessions"]).workload,
                       .sessions(SessionPlan(users: 10_000, updates: 20, sessionTime: 6_000_000_000, ramp: 30_000_000_000)))
    }

    func testTheSecretComesFromTheEnvironmentForBrainOnly() throws {
        XCTAssertEqual(try settings([], environment: ["BRAIN_SECRET": "s3cret"]).secret, "s3cret")
        XCTAssertEqual(try settings(["--secret", "flag"], environment: ["BRAIN_SECRET": "s3cret"]).secret, "flag")
        XCTAssertNil(try settings(["--protocol", "memcached"], environment: ["BRAIN_SECRET": "s3cret"]).secret)
        assertInvalid(["--protocol", "redis", "--secret", "x"], "--secret is for --protocol brain only")
    }

    func testInvalidOptionsNameTheOption() {
        assertInvalid(["--ratio", "nine"], "--ratio 'nine' is not a get:set ratio such as 9:1, 1:0 or 0:1")
        assertInvalid(["--ratio", "0:0"], "--ratio '0:0' is not a get:set ratio such as 9:1, 1:0 or 0:1")
        assertInvalid(["--ratio", "9:1:1"], "--ratio '9:1:1' is not a get:set ratio such as 9:1, 1:0 or 0:1")
        let sizeHelp = "is not a size (such as 100 or 2kb) or a range of sizes (such as 1kb-2kb) from 1 to 1000000 bytes"
        assertInvalid(["--value-size", "0"], "--value-size '0' \(sizeHelp)")
        assertInvalid(["--value-size", "2-1"], "--value-size '2-1' \(sizeHelp)")
        assertInvalid(["--value-size", "2mb"], "--value-size '2mb' \(sizeHelp)")
        assertInvalid(["--value-size", "big"], "--value-size 'big' \(sizeHelp)")
        assertInvalid(["--value-kind", "json", "--value-size", "20"], "--value-kind json needs --value-size of at least 40 bytes")
        assertInvalid(["--duration", "1s", "--requests", "10"], "give --duration or --requests, not both")
        assertInvalid(["--duration", "soon"], "--duration 'soon' is not a duration such as 10s, 500ms or 2m")
        assertInvalid(["--duration", "0s"], "--duration must be longer than 0")
        assertInvalid(["--requests", "0"], "--requests 0 only makes sense with --warmup (load only)")
        assertInvalid(["--requests=-1"], "--requests -1 is negative")
        assertInvalid(["--connections", "0"], "--connections 0 is out of range: use 1 to 10000")
        assertInvalid(["--pipeline", "0"], "--pipeline 0 is out of range: use 1 to 4096")
        assertInvalid(["--connections", "2", "--threads", "3"], "--threads 3 is out of range: use 1 to 2 (at most one per connection)")
        assertInvalid(["--port", "70000"], "--port 70000 is not a port: use 1 to 65535")
        assertInvalid(["--keys", "0"], "--keys 0 is out of range: use 1 to 2147483647")
        assertInvalid(["--users", "5"], "--users is for --workload sessions")
        assertInvalid(["--workload", "sessions", "--keys", "5"],
                      "--keys is for --workload mix (sessions use --users, --updates, --session-time, --ramp)")
        assertInvalid(["--workload", "sessions", "--warmup"],
                      "--warmup would make every session's first read warm: load the records in a separate run (--workload mix --warmup --requests 0)")
        assertInvalid(["--workload", "sessions", "--updates=-1"], "--updates -1 is out of range: use 0 to 10000")
    }

    func testUnknownProtocolIsRefusedByTheParser() {
        XCTAssertThrowsError(try Bench.parse(["--protocol", "http"]))
        XCTAssertThrowsError(try Bench.parse(["--value-kind", "zeros"]))
    }
}

// MARK: - Workloads, without sockets

final class BenchWorkloadTests: XCTestCase {
    private let pool = ValuePool(kind: .random, sizes: 10...10, count: 16, seed: 1)

    private func connection(index: Int = 0, pipeline: Int) -> BenchConnection {
        BenchConnection(fd: -1, index: index, pipeline: pipeline)
    }

    /// The keys of `get`/`set` requests in `bytes`, in order, with their operation.
    private func requests(_ bytes: [UInt8], wire: WireProtocol) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        switch wire {
        case .brain, .memcached:
            return text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).compactMap { line in
                let words = line.split(separator: " ")
                guard words.count >= 2, words[0] == "get" || words[0] == "set" else { return nil }
                return "\(words[0]) \(words[1])"
            }
        case .redis:
            return []
        }
    }

    func testTheMixIsTheSameOverEveryProtocol() {
        var sequences: [[String]] = []
        for wire in [WireProtocol.brain, .memcached] {
            let encoder = RequestEncoder(wire: wire, keys: KeyFormat(keyCount: 1000), values: pool)
            var mix = MixWorkload(encoder: encoder, keys: 1000, ratio: (3, 1), stop: .requests(200), seed: 42, connectionIndexes: [5])
            var link = connection(index: 5, pipeline: 200)
            mix.issue(local: 0, connection: &link, room: 200, now: 1)
            XCTAssertEqual(link.pending.count, 200)
            sequences.append(requests(link.outbox, wire: wire))
        }
        XCTAssertEqual(sequences[0].count, 200)
        XCTAssertEqual(sequences[0], sequences[1])
        let gets = sequences[0].filter { $0.hasPrefix("get") }.count
        XCTAssertTrue((120...180).contains(gets), "about 3 gets in 4, saw \(gets) of 200")
        XCTAssertGreaterThan(Set(sequences[0]).count, 150, "keys spread over the key space")
    }

    func testTheMixStopsAtItsRequestCountAndRecordsReplies() {
        let encoder = RequestEncoder(wire: .brain, keys: KeyFormat(keyCount: 10), values: pool)
        var mix = MixWorkload(encoder: encoder, keys: 10, ratio: (1, 1), stop: .requests(3), seed: 1, connectionIndexes: [0])
        var link = connection(pipeline: 8)
        mix.issue(local: 0, connection: &link, room: 8, now: 1_000)
        XCTAssertEqual(link.pending.count, 3)
        XCTAssertTrue(mix.isFinished(now: 0))
        while let request = link.pending.pop() {
            let reply: BenchReply = request.kind == .get ? .missing : .stored
            mix.complete(request, reply: reply, local: 0, now: 251_000)
        }
        mix.complete(PendingRequest(sentAt: 1_000, kind: .set, subject: 0), reply: .error(code: "dirty_limit"), local: 0, now: 2_000)
        XCTAssertEqual(mix.stats.successes, 3)
        XCTAssertEqual(mix.stats.errors, ["dirty_limit": 1])
        XCTAssertEqual(LatencySummary(mix.stats.allLatencies)?.p50, 250.0, "250 us from send to reply; the error is kept out")
    }

    func testTheMixStopsAtItsDeadline() {
        let encoder = RequestEncoder(wire: .brain, keys: KeyFormat(keyCount: 10), values: pool)
        var mix = MixWorkload(encoder: encoder, keys: 10, ratio: (1, 0), stop: .deadline(100), seed: 1, connectionIndexes: [0])
        var link = connection(pipeline: 4)
        mix.issue(local: 0, connection: &link, room: 4, now: 100)
        XCTAssertEqual(link.pending.count, 0)
        XCTAssertFalse(mix.isFinished(now: 99))
        XCTAssertTrue(mix.isFinished(now: 100))
    }

    func testTheWarmUpSetsEveryKeyOnce() {
        let encoder = RequestEncoder(wire: .memcached, keys: KeyFormat(keyCount: 10), values: pool)
        var seen: [String] = []
        for (thread, share) in [[0, 2], [1]].enumerated() {
            var preload = PreloadWorkload(encoder: encoder, keys: 10, connections: 3, connectionIndexes: share)
            for (local, index) in share.enumerated() {
                var link = connection(index: index, pipeline: 2)
                while !preload.isFinished(now: 0) {
                    preload.issue(local: local, connection: &link, room: 2, now: 0)
                    while let request = link.pending.pop() { preload.complete(request, reply: .stored, local: local, now: 0) }
                    if link.outbox.isEmpty { break }
                    seen += requests(link.outbox, wire: .memcached)
                    link.outbox.removeAll()
                }
            }
            XCTAssertTrue(preload.isFinished(now: 0), "thread \(thread)")
        }
        XCTAssertEqual(seen.sorted(), (0..<10).map { "set " + KeyFormat(keyCount: 10).key($0) })
    }

    func testASessionIsAColdReadThenReadWriteUpdatesOnSchedule() {
        let plan = SessionPlan(users: 2, updates: 3, sessionTime: 3_000, ramp: 1_500)
        XCTAssertEqual(plan.arrival(of: 0), 0)
        XCTAssertEqual(plan.arrival(of: 1), 1_500)
        XCTAssertEqual(plan.updateTime(of: 1, step: 3), 4_500)
        XCTAssertEqual(plan.totalTime, 4_500)
        let encoder = RequestEncoder(wire: .brain, keys: KeyFormat(keyCount: 2), values: pool)
        var sessions = SessionWorkload(encoder: encoder, plan: plan, start: 10_000, seed: 1, connections: 1, connectionIndexes: [0])
        var link = connection(pipeline: 4)
        var log: [String] = []
        var due: [Int] = []
        for now in stride(from: UInt64(10_000), through: 20_000, by: 500) {
            due.removeAll()
            sessions.takeDue(now: now, into: &due)
            // Replies come at once; a warm read's write leaves on the same tick.
            repeat {
                sessions.issue(local: 0, connection: &link, room: 4, now: now)
                while let request = link.pending.pop() {
                    log.append("\(now - 10_000) \(request.kind.name) user \(request.subject)")
                    sessions.complete(request, reply: request.kind == .set ? .stored : .value(length: 10), local: 0, now: now + 100)
                }
            } while !link.outbox.isEmpty && { link.outbox.removeAll(); return true }()
        }
        XCTAssertEqual(log, [
            "0 cold_get user 0",
            "1000 warm_get user 0", "1000 set user 0",
            "1500 cold_get user 1",
            "2000 warm_get user 0", "2000 set user 0",
            "2500 warm_get user 1", "2500 set user 1",
            "3000 warm_get user 0", "3000 set user 0",
            "3500 warm_get user 1", "3500 set user 1",
            "4500 warm_get user 1", "4500 set user 1",
        ])
        XCTAssertTrue(sessions.isFinished(now: 0))
        XCTAssertEqual(sessions.stats.count(.coldGet), 2)
        XCTAssertEqual(sessions.stats.count(.warmGet), 6)
        XCTAssertEqual(sessions.stats.count(.set), 6)
    }

    func testTimersComeOutInOrder() {
        var heap = TimerHeap()
        var random = BenchRandom(seed: 5)
        var dues: [UInt64] = []
        for slot in 0..<200 {
            let due = UInt64(random.below(1000))
            dues.append(due)
            heap.push(due: due, slot: Int32(slot))
        }
        XCTAssertNil(TimerHeap().earliest)
        XCTAssertEqual(heap.earliest, dues.min())
        var out: [UInt64] = []
        while let entry = heap.popDue(now: 500) { out.append(entry.due) }
        XCTAssertEqual(out, dues.filter { $0 <= 500 }.sorted())
        XCTAssertEqual(heap.earliest, dues.filter { $0 > 500 }.min())
    }

    func testPendingRequestsComeBackOldestFirstAcrossTheRing() {
        var queue = PendingQueue(capacity: 3)
        var popped: [Int32] = []
        for subject in Int32(0)..<10 {
            queue.push(PendingRequest(sentAt: 0, kind: .get, subject: subject))
            if queue.count == 3, let oldest = queue.pop() { popped.append(oldest.subject) }
        }
        while let request = queue.pop() { popped.append(request.subject) }
        XCTAssertEqual(popped, Array(0..<10))
        XCTAssertNil(queue.pop())
    }

    func testRequestSharesAddUp() {
        XCTAssertEqual(BenchRunner.split(.requests(10), connections: 5, shares: [[0, 2, 4], [1, 3]]), [6, 4])
        XCTAssertEqual(BenchRunner.split(.requests(7), connections: 3, shares: [[0], [1], [2]]), [2, 2, 3])
    }
}

// MARK: - A run over loopback, against a tiny in-test server

final class BenchRunTests: XCTestCase {
    /// A listener on a free loopback port answering Brain's line protocol from one dictionary
    /// shared by its connections, one thread per connection, until the client closes.
    private final class TinyLineServer: @unchecked Sendable {
        let port: Int
        private let listener: CInt
        private static let store = Mutex<[Substring: Substring]>([:])

        init() throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(listener, pointer, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, pointer, &length) == 0
                }
            }
            guard bound else {
                close(listener)
                throw BenchError(.connectFailed, "cannot listen")
            }
            self.listener = listener
            self.port = Int(UInt16(bigEndian: address.sin_port))
            Thread.detachNewThread {
                while true {
                    let client = accept(listener, nil, nil)
                    guard client >= 0 else { return }
                    Thread.detachNewThread { TinyLineServer.serve(client) }
                }
            }
        }

        private static func serve(_ client: CInt) {
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            defer { close(client) }
            while true {
                let count = recv(client, &chunk, chunk.count, 0)
                guard count > 0 else { return }
                pending += chunk[0..<count]
                var replies = ""
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[0..<newline], as: UTF8.self)
                    pending.removeSubrange(0...newline)
                    let words = line.split(separator: " ", maxSplits: 2)
                    if words.first == "get" {
                        replies += store.withLock { $0[words[1]] }.map { "-\($0)\r\n" } ?? "null\r\n"
                    } else if words.first == "set", words.count == 3 {
                        let new = store.withLock { $0.updateValue(words[2], forKey: words[1]) == nil }
                        replies += new ? "1\r\n" : "0\r\n"
                    } else {
                        replies += "error unknown_command: \(words.first ?? "")\r\n"
                    }
                }
                let bytes = Array(replies.utf8)
                _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
            }
        }

        func stop() {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    func testAWarmedUpPipelinedRunAnswersEveryRequest() async throws {
        let server = try TinyLineServer()
        defer { server.stop() }
        let settings = try Bench.parse([
            "--port", "\(server.port)", "--connections", "3", "--threads", "2", "--pipeline", "8", "--keys", "200",
            "--requests", "3000", "--warmup", "--value-kind", "json", "--value-size", "100-300",
        ]).settings()
        let result = try await BenchRunner.run(settings)
        XCTAssertEqual(result.warmup?.replies, 200)
        XCTAssertEqual(result.measured.replies, 3000)
        XCTAssertEqual(result.measured.errors, 0)
        XCTAssertEqual(result.measured.misses, 0, "every key was loaded by the warm-up")
        XCTAssertGreaterThan(result.measured.hits, 2000)
        XCTAssertEqual(result.measured.latencyUs["all"]?.count, 3000)
        XCTAssertNotNil(result.measured.latencyUs["get"])
        let decoded = try JSONSerialization.jsonObject(with: Data(result.json().utf8)) as? [String: Any]
        XCTAssertEqual(decoded?["protocol_name"] as? String, "brain")
        XCTAssertEqual((decoded?["measured"] as? [String: Any])?["replies"] as? Int, 3000)
        XCTAssertTrue(result.text().contains("3000 replies"))
    }

    func testAServerThatIsNotListeningIsAConnectFailure() async throws {
        let server = try TinyLineServer()
        let port = server.port
        server.stop()
        let settings = try Bench.parse(["--port", "\(port)", "--requests", "10"]).settings()
        do {
            _ = try await BenchRunner.run(settings)
            XCTFail("the run should fail")
        } catch {
            XCTAssertEqual(error.code, .connectFailed)
            XCTAssertTrue(error.message.hasPrefix("cannot connect to 127.0.0.1:\(port): Connection refused"), error.message)
        }
    }
}
