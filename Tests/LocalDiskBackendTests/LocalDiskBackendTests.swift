import Engine
import Foundation
import Logging
import NIOPosix
import Synchronization
import XCTest

@testable import LocalDiskBackend

final class LocalDiskBackendTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("brain-disk-XXXXXX").path
        var buffer = Array(template.utf8CString)
        guard let made = mkdtemp(&buffer) else { throw XCTSkip("mkdtemp failed") }
        root = String(cString: made)
    }

    override func tearDownWithError() throws {
        if !root.isEmpty { try? FileManager.default.removeItem(atPath: root) }
    }

    private func makeBackend(fsync: Bool = true, logs: LogRecorder? = nil) throws -> LocalDiskBackend {
        var logger = Logger(label: "test")
        if let logs { logger = Logger(label: "test") { _ in logs } }
        logger.logLevel = .debug
        return try LocalDiskBackend(directory: root + "/backend", fsync: fsync, logger: logger)
    }

    /// The bytes of the object's file, read the way any other program would.
    private func bytesOnDisk(_ key: ObjectKey) -> [UInt8]? {
        FileManager.default.contents(atPath: root + "/backend/" + LocalDiskLayout.relativePath(of: key)).map {
            [UInt8]($0)
        }
    }

    /// Every file and directory under the backend directory, relative to it.
    private func tree() -> [String] {
        let base = root + "/backend"
        return (FileManager.default.subpaths(atPath: base) ?? []).sorted()
    }

    private func assertPreconditionFailed(
        _ body: () async throws -> Void,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async {
        do {
            try await body()
            XCTFail("expected precondition_failed", file: file, line: line)
        } catch let error as BackendError {
            XCTAssertEqual(error.code, .preconditionFailed, "\(error)", file: file, line: line)
        } catch {
            XCTFail("not a BackendError: \(error)", file: file, line: line)
        }
    }

    // MARK: Round trips and layout

    func testBinaryKeysRoundTripAndTheirFilesHoldExactlyTheValue() async throws {
        let backend = try makeBackend()
        // Every single byte, `.` included.
        var keys: [[UInt8]] = (0...255).map { [UInt8($0)] }
        keys.append(Array(0...249))
        keys.append(Array(6...255))
        keys.append(Array("..".utf8))
        keys.append(Array("a/b".utf8))
        keys.append(Array(".tmp-looks-like-debris".utf8))
        keys.append(Array("a+".utf8))
        keys.append([UInt8](repeating: UInt8(ascii: "%"), count: 250))
        keys.append((0..<250).map { $0 % 3 == 0 ? UInt8(ascii: "a") : UInt8(ascii: "%") })
        keys.append([UInt8(ascii: "a")] + [UInt8](repeating: UInt8(ascii: "."), count: 249))
        keys.append([UInt8](repeating: UInt8(ascii: "z"), count: 250))

        for (index, key) in keys.enumerated() {
            let objectKey = ObjectKey(type: .string, key: key)
            let value = Array("value \(index)".utf8) + key + [0, 255, 13, 10]
            let written = try await backend.put(objectKey, bytes: value, condition: .none)
            XCTAssertEqual(written.size, value.count)
            let read = try await backend.get(objectKey)
            XCTAssertEqual(read?.bytes, value, "key \(key)")
            XCTAssertEqual(read?.etag, written.etag)
            XCTAssertEqual(bytesOnDisk(objectKey), value, "file of key \(key)")
        }
        // Every object is in place at once: no key overwrote another's file.
        for (index, key) in keys.enumerated() {
            let value = Array("value \(index)".utf8) + key + [0, 255, 13, 10]
            let read = try await backend.get(ObjectKey(type: .string, key: key))
            XCTAssertEqual(read?.bytes, value, "key \(key)")
        }
        XCTAssertFalse(tree().contains { $0.split(separator: "/").last!.hasPrefix(".tmp-") }, "temporary files left")
        try await backend.shutdown()
    }

    func testLayoutIsTypeFolderThenEncodedKey() async throws {
        let backend = try makeBackend()
        _ = try await backend.put(
            ObjectKey(type: .string, key: Array("user:1".utf8)),
            bytes: Array("hello".utf8),
            condition: .none
        )
        _ = try await backend.put(
            ObjectKey(type: .hash, key: Array("user:1".utf8)),
            bytes: Array("{\"a\":\"b\"}".utf8),
            condition: .none
        )
        let long = ObjectKey(type: .term, key: [UInt8](repeating: UInt8(ascii: "k"), count: 250))
        _ = try await backend.put(long, bytes: [131, 100, 0, 2, 111, 107], condition: .none)

        XCTAssertEqual(
            tree(),
            [
                "hash", "hash/user%3A1",
                "string", "string/user%3A1",
                "term", "term/" + String(repeating: "k", count: 200) + "+",
                "term/" + String(repeating: "k", count: 200) + "+/" + String(repeating: "k", count: 50),
            ]
        )
        XCTAssertEqual(
            try String(contentsOfFile: root + "/backend/string/user%3A1", encoding: .utf8),
            "hello"
        )
        XCTAssertEqual(backend.description, "file://\(root)/backend")
        try await backend.shutdown()
    }

    // MARK: ETags

    func testETagIsTheQuotedMD5OfTheContent() async throws {
        let backend = try makeBackend()
        let key = ObjectKey(type: .string, key: Array("greeting".utf8))
        let written = try await backend.put(key, bytes: Array("hello".utf8), condition: .none)
        XCTAssertEqual(written.etag, "\"5d41402abc4b2a76b9719d911017c592\"")
        let head = try await backend.head(key)
        XCTAssertEqual(head, ObjectMetadata(etag: "\"5d41402abc4b2a76b9719d911017c592\"", size: 5))
        let read = try await backend.get(key)
        XCTAssertEqual(read?.etag, "\"5d41402abc4b2a76b9719d911017c592\"")

        let empty = try await backend.put(key, bytes: [], condition: .none)
        XCTAssertEqual(empty.etag, "\"d41d8cd98f00b204e9800998ecf8427e\"")
        let emptyRead = try await backend.get(key)
        XCTAssertEqual(emptyRead, BackendObject(bytes: [], etag: "\"d41d8cd98f00b204e9800998ecf8427e\""))
        try await backend.shutdown()
    }

    // MARK: Conditions

    func testConditionalPuts() async throws {
        let backend = try makeBackend()
        let key = ObjectKey(type: .string, key: Array("fenced".utf8))

        let created = try await backend.put(key, bytes: Array("one".utf8), condition: .ifNoneExists)
        await assertPreconditionFailed {
            _ = try await backend.put(key, bytes: Array("two".utf8), condition: .ifNoneExists)
        }
        let afterRefusedCreate = try await backend.get(key)
        XCTAssertEqual(afterRefusedCreate?.bytes, Array("one".utf8))

        await assertPreconditionFailed {
            _ = try await backend.put(
                key,
                bytes: Array("three".utf8),
                condition: .ifMatch("\"00000000000000000000000000000000\"")
            )
        }
        let afterRefusedMatch = try await backend.get(key)
        XCTAssertEqual(afterRefusedMatch?.bytes, Array("one".utf8))

        let replaced = try await backend.put(key, bytes: Array("four".utf8), condition: .ifMatch(created.etag!))
        XCTAssertEqual(replaced.etag, LocalDiskBackend.etag(of: Array("four".utf8)))
        XCTAssertEqual(bytesOnDisk(key), Array("four".utf8))

        // The old ETag no longer matches; an unquoted current one does.
        await assertPreconditionFailed {
            _ = try await backend.put(key, bytes: Array("five".utf8), condition: .ifMatch(created.etag!))
        }
        let unquoted = String(replaced.etag!.dropFirst().dropLast())
        _ = try await backend.put(key, bytes: Array("six".utf8), condition: .ifMatch(unquoted))
        XCTAssertEqual(bytesOnDisk(key), Array("six".utf8))

        // If-Match on a missing object fails and creates nothing.
        let missing = ObjectKey(type: .string, key: Array("missing".utf8))
        await assertPreconditionFailed {
            _ = try await backend.put(missing, bytes: Array("x".utf8), condition: .ifMatch(replaced.etag!))
        }
        let missingHead = try await backend.head(missing)
        XCTAssertNil(missingHead)
        XCTAssertFalse(tree().contains { $0.contains(".tmp-") }, "refused writes left temporary files")
        try await backend.shutdown()
    }

    func testConditionalDeletes() async throws {
        let backend = try makeBackend()
        let key = ObjectKey(type: .hash, key: Array("h".utf8))
        let written = try await backend.put(key, bytes: Array("{}".utf8), condition: .none)

        await assertPreconditionFailed {
            try await backend.delete(key, condition: .ifMatch("\"ffffffffffffffffffffffffffffffff\""))
        }
        await assertPreconditionFailed { try await backend.delete(key, condition: .ifNoneExists) }
        let kept = try await backend.get(key)
        XCTAssertEqual(kept?.bytes, Array("{}".utf8))

        try await backend.delete(key, condition: .ifMatch(written.etag!))
        let gone = try await backend.get(key)
        XCTAssertNil(gone)
        await assertPreconditionFailed { try await backend.delete(key, condition: .ifMatch(written.etag!)) }
        try await backend.delete(key, condition: .ifNoneExists)
        try await backend.shutdown()
    }

    func testFiftyConcurrentCreatesOfOneKeyHaveExactlyOneWinner() async throws {
        let backend = try makeBackend()
        let key = ObjectKey(type: .string, key: Array("lease".utf8))
        let outcomes = await withTaskGroup(of: (Int, BackendError.Code?).self) { group in
            for writer in 0..<50 {
                group.addTask {
                    do {
                        _ = try await backend.put(key, bytes: Array("writer \(writer)".utf8), condition: .ifNoneExists)
                        return (writer, nil)
                    } catch let error as BackendError {
                        return (writer, error.code)
                    } catch {
                        return (writer, .failed)
                    }
                }
            }
            var all: [(Int, BackendError.Code?)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let winners = outcomes.filter { $0.1 == nil }.map(\.0)
        XCTAssertEqual(winners.count, 1, "winners: \(winners)")
        XCTAssertEqual(outcomes.filter { $0.1 == .preconditionFailed }.count, 49)
        let stored = try await backend.get(key)
        XCTAssertEqual(stored?.bytes, Array("writer \(winners.first ?? -1)".utf8))
        XCTAssertEqual(tree(), ["string", "string/lease"])
        try await backend.shutdown()
    }

    func testConcurrentIfMatchUpdatesFromOneETagHaveExactlyOneWinner() async throws {
        let backend = try makeBackend(fsync: false)
        let key = ObjectKey(type: .string, key: Array("counter".utf8))
        let base = try await backend.put(key, bytes: Array("0".utf8), condition: .none)
        let successes = await withTaskGroup(of: Bool.self) { group in
            for writer in 0..<20 {
                group.addTask {
                    (try? await backend.put(key, bytes: Array("\(writer + 1)".utf8), condition: .ifMatch(base.etag!)))
                        != nil
                }
            }
            var count = 0
            for await success in group where success { count += 1 }
            return count
        }
        XCTAssertEqual(successes, 1)
        try await backend.shutdown()
    }

    // MARK: Head and delete

    func testHeadAndDeleteSemantics() async throws {
        let backend = try makeBackend()
        let key = ObjectKey(type: .string, key: Array("k".utf8))
        let missingGet = try await backend.get(key)
        let missingHead = try await backend.head(key)
        XCTAssertNil(missingGet)
        XCTAssertNil(missingHead)
        try await backend.delete(key, condition: .none)

        _ = try await backend.put(key, bytes: [1, 2, 3], condition: .none)
        let head = try await backend.head(key)
        XCTAssertEqual(head?.size, 3)
        XCTAssertEqual(head?.etag, LocalDiskBackend.etag(of: [1, 2, 3]))
        try await backend.delete(key, condition: .none)
        let afterDelete = try await backend.head(key)
        XCTAssertNil(afterDelete)
        XCTAssertNil(bytesOnDisk(key))
        try await backend.delete(key, condition: .none)
        try await backend.shutdown()
    }

    func testDeletingALongKeyRemovesItsEmptySegmentDirectoriesOnly() async throws {
        let backend = try makeBackend()
        let prefix = [UInt8](repeating: UInt8(ascii: "p"), count: 200)
        let first = ObjectKey(type: .string, key: prefix + Array("first".utf8))
        let second = ObjectKey(type: .string, key: prefix + Array("second".utf8))
        let deep = ObjectKey(type: .string, key: [UInt8](repeating: UInt8(ascii: "%"), count: 250))
        _ = try await backend.put(first, bytes: [1], condition: .none)
        _ = try await backend.put(second, bytes: [2], condition: .none)
        _ = try await backend.put(deep, bytes: [3], condition: .none)

        try await backend.delete(first, condition: .none)
        XCTAssertEqual(bytesOnDisk(second), [2], "the sibling in the shared segment directory survives")
        try await backend.delete(second, condition: .none)
        try await backend.delete(deep, condition: .none)
        XCTAssertEqual(tree(), ["string"], "segment directories are removed, the type folder stays")

        // The directories come back on the next write.
        _ = try await backend.put(deep, bytes: [4], condition: .ifNoneExists)
        XCTAssertEqual(bytesOnDisk(deep), [4])
        try await backend.shutdown()
    }

    func testConcurrentWritesAndDeletesOfSiblingLongKeys() async throws {
        let backend = try makeBackend(fsync: false)
        let prefix = [UInt8](repeating: UInt8(ascii: "s"), count: 200)
        let keys = (0..<8).map { ObjectKey(type: .string, key: prefix + [UInt8(ascii: "a") + UInt8($0)]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    for round in 0..<40 {
                        _ = try await backend.put(key, bytes: [UInt8(round)], condition: .none)
                        try await backend.delete(key, condition: .none)
                    }
                    _ = try await backend.put(key, bytes: [255], condition: .none)
                }
            }
            try await group.waitForAll()
        }
        for key in keys {
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, [255])
        }
        try await backend.shutdown()
    }

    // MARK: Start-up and shutdown

    func testStartUpRemovesDebrisAndLogsHowMany() async throws {
        let fm = FileManager.default
        let segment = root + "/backend/string/" + String(repeating: "x", count: 200) + "+"
        try fm.createDirectory(atPath: segment, withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: root + "/backend/string/.tmp-0123456789abcdef", contents: Data([1])))
        XCTAssertTrue(fm.createFile(atPath: segment + "/.tmp-fedcba9876543210", contents: Data([2])))
        XCTAssertTrue(fm.createFile(atPath: root + "/backend/string/kept", contents: Data("kept".utf8)))

        let logs = LogRecorder()
        let backend = try makeBackend(logs: logs)
        XCTAssertEqual(tree(), ["string", "string/kept", "string/" + String(repeating: "x", count: 200) + "+"])
        XCTAssertTrue(
            logs.messages.contains("removed leftover temporary files count=2"),
            "logged: \(logs.messages)"
        )
        let kept = try await backend.get(ObjectKey(type: .string, key: Array("kept".utf8)))
        XCTAssertEqual(kept?.bytes, Array("kept".utf8))
        try await backend.shutdown()
    }

    func testStartUpCreatesTheDirectoryOrNamesThePath() throws {
        let nested = root + "/a/b/c"
        _ = try LocalDiskBackend(directory: nested + "/", logger: Logger(label: "test"))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: nested, isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)

        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/plain-file", contents: Data()))
        XCTAssertThrowsError(try LocalDiskBackend(directory: root + "/plain-file/sub", logger: Logger(label: "test"))) {
            let error = $0 as? BackendError
            XCTAssertEqual(error?.code, .failed)
            XCTAssertTrue(error?.message.contains(self.root + "/plain-file") ?? false, "\(String(describing: error))")
        }
    }

    func testShutdownWaitsForWritesInFlightAndRefusesLaterCalls() async throws {
        // A pool of one thread, held by a gate, so the writes are provably in flight
        // (accepted, not yet run) when shutdown is called.
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let gate = DispatchSemaphore(value: 0)
        pool.submit { _ in gate.wait() }
        let backend = try LocalDiskBackend(
            directory: root + "/backend",
            threadPool: pool,
            logger: Logger(label: "test")
        )
        let value = [UInt8](repeating: 7, count: 64 * 1024)
        let writers = (0..<20).map { writer in
            Task {
                try await backend.put(
                    ObjectKey(type: .string, key: Array("w\(writer)".utf8)),
                    bytes: value,
                    condition: .none
                )
            }
        }
        for _ in 0..<1_000_000 where backend.operationsInFlight < writers.count { await Task.yield() }
        XCTAssertEqual(backend.operationsInFlight, writers.count)

        let finished = Atomic(false)
        let shutdown = Task {
            try await backend.shutdown()
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        for _ in 0..<1_000 { await Task.yield() }
        XCTAssertFalse(finished.load(ordering: .sequentiallyConsistent), "shutdown returned with writes pending")
        do {
            _ = try await backend.get(ObjectKey(type: .string, key: Array("w0".utf8)))
            XCTFail("a call made during shutdown was accepted")
        } catch let error as BackendError {
            XCTAssertEqual(error.code, .failed)
            XCTAssertEqual(error.message, "file://\(root)/backend is shut down")
        }

        gate.signal()
        try await shutdown.value
        XCTAssertEqual(backend.operationsInFlight, 0)
        // Every write accepted before shutdown is complete on disk once it has returned.
        XCTAssertFalse(tree().contains { $0.contains(".tmp-") }, "temporary files remain after shutdown")
        for writer in 0..<writers.count {
            XCTAssertEqual(bytesOnDisk(ObjectKey(type: .string, key: Array("w\(writer)".utf8))), value)
        }
        for task in writers {
            let metadata = try await task.value
            XCTAssertEqual(metadata, ObjectMetadata(etag: LocalDiskBackend.etag(of: value), size: value.count))
        }
        try await pool.shutdownGracefully()
    }

    func testEmptyKeyIsRefused() async throws {
        let backend = try makeBackend()
        do {
            _ = try await backend.put(ObjectKey(type: .string, key: []), bytes: [1], condition: .none)
            XCTFail("an empty key was stored")
        } catch let error as BackendError {
            XCTAssertEqual(error.code, .failed)
        }
        try await backend.shutdown()
    }

    // MARK: Errors

    func testTransientErrnosAreRetryableAndOthersFail() {
        XCTAssertEqual(POSIXFiles.code(forErrno: ENOSPC), .unavailable)
        XCTAssertEqual(POSIXFiles.code(forErrno: EIO), .unavailable)
        XCTAssertEqual(POSIXFiles.code(forErrno: EMFILE), .unavailable)
        XCTAssertEqual(POSIXFiles.code(forErrno: EACCES), .failed)
        XCTAssertEqual(POSIXFiles.code(forErrno: EROFS), .failed)
        let error = POSIXFiles.error("cannot write", "/data/string/k", errno: ENOSPC)
        XCTAssertEqual(error.code, .unavailable)
        XCTAssertTrue(error.isRetryable)
        XCTAssertEqual(error.message, "cannot write /data/string/k: No space left on device (errno \(ENOSPC))")
    }

    func testAFileSystemFailureNamesTheFileAndTheReason() async throws {
        let backend = try makeBackend()
        // Something other than Brain put a directory where the object's file belongs.
        let path = root + "/backend/string/blocked"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let key = ObjectKey(type: .string, key: Array("blocked".utf8))
        do {
            _ = try await backend.get(key)
            XCTFail("a directory was read as an object")
        } catch let error as BackendError {
            XCTAssertEqual(error.code, .failed)
            XCTAssertEqual(error.message, "cannot read \(path): Is a directory (errno \(EISDIR))")
        }
        do {
            _ = try await backend.put(key, bytes: [1], condition: .none)
            XCTFail("a file replaced a directory")
        } catch let error as BackendError {
            XCTAssertEqual(error.code, .failed)
            XCTAssertTrue(error.message.hasSuffix("\(path): Is a directory (errno \(EISDIR))"), error.message)
        }
        XCTAssertEqual(tree(), ["string", "string/blocked"], "the refused write left no temporary file")
        try await backend.shutdown()
    }
}

/// Keeps what a logger was asked to log, as `message key=value ...`.
final class LogRecorder: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    var messages: [String] { lines.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let details = (event.metadata ?? [:])
            .filter { $0.key != "directory" }
            .sorted { $0.key < $1.key }
            .map { " \($0.key)=\($0.value)" }
            .joined()
        let line = "\(event.message)\(details)"
        lines.withLock { $0.append(line) }
    }
}
