import Engine
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import XCTest

@testable import LineProtocol

/// Keeps the log lines of a test.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            logs.append("\(event.level) \(event.message)")
        }
    }

    var logger: Logger { Logger(label: "line-test") { _ in Handler(logs: self) } }
}

/// A running transport on an ephemeral port, under a service group as in the server.
struct RunningServer: Sendable {
    let port: Int
    let store: FakeStore
    let metrics: Metrics
    let logs: CapturedLogs
    let group: ServiceGroup
    let shutdownRequests: Counter

    func shutDown() async {
        await group.triggerGracefulShutdown()
    }
}

/// A shareable counter.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

final class LineTransportTests: XCTestCase {
    private func withServer(
        _ configuration: LineTransportConfiguration = LineTransportConfiguration(port: 0),
        store: FakeStore = FakeStore(),
        _ body: @escaping @Sendable (RunningServer) async throws -> Void
    ) async throws {
        let logs = CapturedLogs()
        let metrics = Metrics()
        let requests = Counter()
        let groupBox = Mutex<ServiceGroup?>(nil)
        let transport = LineTransport(
            configuration: configuration, store: store, metrics: metrics, logger: logs.logger,
            requestShutdown: {
                requests.increment()
                let group = groupBox.withLock { $0 }
                Task { await group?.triggerGracefulShutdown() }
            })
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [transport], logger: logs.logger))
        groupBox.withLock { $0 = group }
        try await withTimeout(seconds: 20) {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let port = try await transport.boundPort()
                let server = RunningServer(
                    port: port, store: store, metrics: metrics, logs: logs, group: group,
                    shutdownRequests: requests)
                do {
                    try await body(server)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    func testListensOnAnEphemeralPortAndSaysSo() async throws {
        try await withServer { server in
            XCTAssertGreaterThan(server.port, 0)
            XCTAssertTrue(server.logs.all.contains("info line protocol listening on 127.0.0.1:\(server.port)"))
        }
    }

    func testPipelinedCommandsInOneWriteAreAnsweredInOrder() async throws {
        try await withServer { server in
            let replies = try await LineTestClient.with(port: server.port) { client in
                try await client.send(
                    "set a 1\r\nget a\nset a two words\nget a\nget missing\r\n\nbogus\nget\nhelp\n"
                        + "set b\\x20c \\x00\\xff\\n\nget b\\x20c\nvset v x\nvget v\nhsetkv h f v\nhget h\nhget nope\n"
                        + "del a\ndel a\n")
                return try await client.readLines(17)
            }
            XCTAssertEqual(
                replies,
                [
                    "1", "-1", "0", "-two words", "null",
                    "error unknown_command: bogus", "error wrong_arity: get takes <key>",
                    "commands: auth del get hdel help hget hpdel hpsetkv hsetkv info pdel pset quit set shutdown vdel vget vset with",
                    "1", #"-\0\xff\n"#, "1", "-x", "1", #"{"f":"v"}"#, "null", "1", "0",
                ])
        }
    }

    func testCommandSplitAcrossManyWrites() async throws {
        try await withServer { server in
            let replies = try await LineTestClient.with(port: server.port) { client in
                for byte in "set key some value\r\n".utf8 {
                    try await client.send(bytes: [byte])
                }
                try await client.send("ge")
                try await client.send("t k")
                try await client.send("ey\r")
                try await client.send("\n")
                return try await client.readLines(2)
            }
            XCTAssertEqual(replies, ["1", "-some value"])
        }
    }

    func testQuitClosesAfterEarlierRepliesAndIgnoresLaterLines() async throws {
        let large = String(repeating: "0123456789abcdef", count: 64 * 1024)
        try await withServer { server in
            let (replies, executed) = try await LineTestClient.with(port: server.port) { client in
                try await client.send("set big \(large)\n")
                let reply = try await client.readLine()
                XCTAssertEqual(reply, "1")
                // The 1 MiB reply must arrive whole although the connection closes right after.
                try await client.send("get big\nquit\nset after 1\n")
                var replies: [String] = []
                while let line = try await client.readLine() { replies.append(line) }
                return (replies, server.store.executed)
            }
            XCTAssertEqual(replies.count, 1)
            XCTAssertTrue(replies.first == "-" + large, "the large reply arrived incomplete or altered")
            XCTAssertEqual(executed, 2, "the line after quit must not run")
        }
    }

    func testLineTooLongIsAnsweredThenTheConnectionCloses() async throws {
        try await withServer(LineTransportConfiguration(port: 0, maxLineBytes: 16)) { server in
            let replies = try await LineTestClient.with(port: server.port) { client in
                try await client.send("get ok\n" + String(repeating: "x", count: 100))
                var replies: [String] = []
                while let line = try await client.readLine() { replies.append(line) }
                return replies
            }
            XCTAssertEqual(replies, ["null", "error line_too_long: limit is 16 bytes"])
        }
    }

    func testAuthIsRequiredWhenASecretIsSet() async throws {
        try await withServer(LineTransportConfiguration(port: 0, secret: "s3cret")) { server in
            let replies = try await LineTestClient.with(port: server.port) { client in
                try await client.send("get a\nhelp\nauth nope\nset a 1\nauth s3cret\nset a 1\nget a\n")
                return try await client.readLines(7)
            }
            XCTAssertEqual(
                replies,
                [
                    "error auth_required: send auth <secret> first",
                    "commands: auth del get hdel help hget hpdel hpsetkv hsetkv info pdel pset quit set shutdown vdel vget vset with",
                    "error auth_failed: wrong secret",
                    "error auth_required: send auth <secret> first",
                    "1", "1", "-1",
                ])
            // Authentication belongs to the connection.
            let again = try await LineTestClient.with(port: server.port) { client in
                try await client.send("get a\n")
                return try await client.readLine()
            }
            XCTAssertEqual(again, "error auth_required: send auth <secret> first")
        }
    }

    func testConnectionsBeyondTheLimitAreRefused() async throws {
        try await withServer(LineTransportConfiguration(port: 0, maxConnections: 1)) { server in
            try await LineTestClient.with(port: server.port) { first in
                try await first.send("set a 1\n")
                let reply = try await first.readLine()
                XCTAssertEqual(reply, "1")
                let refused = try await LineTestClient.with(port: server.port) { second in
                    var replies: [String] = []
                    while let line = try await second.readLine() { replies.append(line) }
                    return replies
                }
                XCTAssertEqual(refused, ["error too_many_connections"])
                // The first connection is unaffected.
                try await first.send("get a\n")
                let again = try await first.readLine()
                XCTAssertEqual(again, "-1")
            }
            // Once the first has left, a new connection is served. The server counts the
            // departure when it sees the close, so allow it a moment.
            var reply: String?
            for _ in 0..<100 {
                reply = try await LineTestClient.with(port: server.port) { client in
                    try await client.send("get a\n")
                    return try await client.readLine()
                }
                if reply == "-1" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(reply, "-1")
        }
    }

    func testHalfClosedClientStillGetsItsReplies() async throws {
        let large = String(repeating: "abcdefgh", count: 256 * 1024)
        try await withServer { server in
            let replies = try await LineTestClient.with(port: server.port) { client in
                try await client.send("set a 1\nget a\nset big \(large)\n")
                let first = try await client.readLines(3)
                // A 2 MiB reply to the last command before the end of input arrives whole.
                try await client.send("get big\n")
                try await client.finishSending()
                var replies = first
                while let line = try await client.readLine() { replies.append(line) }
                return replies
            }
            XCTAssertEqual(replies.count, 4)
            XCTAssertEqual(Array(replies.prefix(3)), ["1", "-1", "1"])
            XCTAssertTrue(replies.last == "-" + large, "the large reply arrived incomplete or altered")
        }
    }

    func testInfoIsOneLineOfPairs() async throws {
        try await withServer { server in
            let reply = try await LineTestClient.with(port: server.port) { client in
                try await client.send("set a 1\ninfo\n")
                return try await client.readLines(2)
            }
            XCTAssertEqual(reply.first, "1")
            let pairs = reply.last?.split(separator: " ") ?? []
            XCTAssertTrue(pairs.contains("keys_string_clean:1"), "\(pairs)")
            XCTAssertTrue(pairs.contains("commands_total:1"), "\(pairs)")
            XCTAssertTrue(pairs.allSatisfy { $0.contains(":") })
        }
    }

    func testCommandsAreCounted() async throws {
        try await withServer { server in
            _ = try await LineTestClient.with(port: server.port) { client in
                try await client.send("get a\nGET b\nset a 1\nget\nbogus\nhelp\n")
                return try await client.readLines(6)
            }
            let rendered = server.metrics.render(StoreInfo())
            XCTAssertTrue(rendered.contains("brain_commands_total{transport=\"line\",cmd=\"get\"} 3\n"), rendered)
            XCTAssertTrue(rendered.contains("brain_commands_total{transport=\"line\",cmd=\"set\"} 1\n"))
            XCTAssertTrue(rendered.contains("brain_commands_total{transport=\"line\",cmd=\"help\"} 1\n"))
            XCTAssertTrue(rendered.contains("brain_commands_total{transport=\"line\",cmd=\"vset\"} 0\n"))
        }
    }

    func testShutdownCommandAnswersThenStopsTheServer() async throws {
        let logs = CapturedLogs()
        let store = FakeStore()
        let requests = Counter()
        let groupBox = Mutex<ServiceGroup?>(nil)
        let transport = LineTransport(
            configuration: LineTransportConfiguration(port: 0), store: store, metrics: Metrics(),
            logger: logs.logger,
            requestShutdown: {
                requests.increment()
                let group = groupBox.withLock { $0 }
                Task { await group?.triggerGracefulShutdown() }
            })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [transport], logger: logs.logger))
        groupBox.withLock { $0 = group }
        try await withTimeout {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let port = try await transport.boundPort()
                let replies = try await LineTestClient.with(port: port) { client in
                    try await client.send("shutdown\n")
                    var replies: [String] = []
                    while let line = try await client.readLine() { replies.append(line) }
                    return replies
                }
                XCTAssertEqual(replies, ["1"])
                // The service group stops on its own: run() returns.
                try await tasks.waitForAll()
            }
        }
        XCTAssertEqual(requests.count, 1)
        XCTAssertTrue(logs.all.contains("info line protocol stopped"))
    }

    func testGracefulShutdownFinishesCommandsInFlightThenCloses() async throws {
        let store = FakeStore(slowKeys: ["slow"])
        try await withServer(store: store) { server in
            try await LineTestClient.with(port: server.port) { idle in
                try await idle.send("set a 1\n")
                let reply = try await idle.readLine()
                XCTAssertEqual(reply, "1")
                try await LineTestClient.with(port: server.port) { busy in
                    try await busy.send("set slow done\nget a\n")
                    await store.waitForSlowCommand()
                    await server.shutDown()
                    store.release()
                    var replies: [String] = []
                    while let line = try await busy.readLine() { replies.append(line) }
                    XCTAssertEqual(replies, ["1", "-1"])
                }
                // The idle connection is closed too.
                let end = try await idle.readLine()
                XCTAssertNil(end)
            }
        }
    }

    func testBindFailureIsReported() async throws {
        try await withServer { server in
            let second = LineTransport(
                configuration: LineTransportConfiguration(port: server.port), store: FakeStore(), metrics: Metrics(),
                logger: server.logs.logger, requestShutdown: {})
            do {
                try await second.run()
                XCTFail("binding a port in use must fail")
            } catch {}
            do {
                _ = try await second.boundPort()
                XCTFail("boundPort must report the bind failure")
            } catch {}
        }
    }
}
