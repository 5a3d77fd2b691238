import AsyncHTTPClient
import Engine
import Logging
import NIOCore
import Synchronization
import XCTest

@testable import S3Backend

/// Log lines kept in memory, to assert what the backend logs.
final class CapturedLog: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let storage = Mutex<[Line]>([])

    var lines: [Line] { storage.withLock { $0 } }

    var logger: Logger {
        Logger(label: "s3-test") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var flat: [String: String] = [:]
            for (key, value) in event.metadata ?? [:] { flat[key] = "\(value)" }
            let line = Line(level: event.level, message: "\(event.message)", metadata: flat)
            log.storage.withLock { $0.append(line) }
        }
    }
}

/// Runs `body` with a backend and shuts the backend down afterwards, whatever happens.
func withBackend<T>(
    _ configuration: S3Configuration, logger: Logger = Logger(label: "s3-test"), _ body: (S3Backend) async throws -> T
) async throws -> T {
    let backend = try S3Backend(configuration: configuration, logger: logger)
    do {
        let result = try await body(backend)
        try await backend.shutdown()
        return result
    } catch {
        try? await backend.shutdown()
        throw error
    }
}

/// Asserts that `body` throws a ``BackendError`` with `code`, and returns its message.
@discardableResult
func assertBackendError(
    _ code: BackendError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> some Any
) async -> String {
    do {
        _ = try await body()
        XCTFail("expected a \(code) error, got success", file: file, line: line)
    } catch let error as BackendError {
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        return error.message
    } catch {
        XCTFail("not a BackendError: \(error)", file: file, line: line)
    }
    return ""
}

/// Creates a bucket with a signed `PUT /<bucket>` and returns the HTTP status.
func createBucket(_ configuration: S3Configuration) async throws -> UInt {
    let builder = try S3RequestBuilder(configuration: configuration)
    let prepared = builder.request(
        .PUT, key: nil, bodyLength: nil, payloadHash: S3Signer.emptyPayloadHash, condition: .none,
        date: AmzDate(secondsSince1970: S3Backend.systemSecondsSince1970()), signingKey: nil)
    var request = HTTPClientRequest(url: prepared.url)
    request.method = prepared.method
    request.headers = prepared.headers
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    _ = try await response.body.collect(upTo: 1 << 20)
    return response.status.code
}

/// The backend against a live moto S3 server: one server per test, on a free loopback port.
final class S3LiveTests: XCTestCase {
    var moto: MotoServer?
    let bucket = "brain-test"
    let credentials = S3Signer.Credentials(accessKeyID: "testing", secretAccessKey: "testing")

    override func setUp() async throws {
        guard MotoServer.isAvailable else { throw XCTSkip("python3 with moto and boto3 is not installed") }
        let moto = try await MotoServer()
        self.moto = moto
        let status = try await createBucket(configuration(prefix: ""))
        XCTAssertEqual(status, 200, "creating the bucket: \(moto.logText)")
    }

    override func tearDown() async throws {
        moto?.stop()
        moto = nil
    }

    func configuration(prefix: String, bucket: String? = nil) -> S3Configuration {
        S3Configuration(
            bucket: bucket ?? self.bucket, prefix: prefix, endpoint: moto?.endpoint, credentials: credentials,
            requestTimeout: .seconds(10))
    }

    func testPutThenGetHeadAndDeleteAnObject() async throws {
        try await withBackend(configuration(prefix: "brain")) { backend in
            let key = ObjectKey(type: .string, key: Array("user:42".utf8))
            let bytes = Array("hello, S3".utf8)
            let written = try await backend.put(key, bytes: bytes, condition: .none)
            // moto's ETag is the quoted MD5 of the bytes, as S3's for a single-part upload.
            XCTAssertEqual(written, ObjectMetadata(etag: "\"d8b4dc4d3df22ae5e9eabe01b0681038\"", size: 9))

            let read = try await backend.get(key)
            XCTAssertEqual(read, BackendObject(bytes: bytes, etag: written.etag))
            let metadata = try await backend.head(key)
            XCTAssertEqual(metadata, written)

            try await backend.delete(key, condition: .none)
            let afterDelete = try await backend.get(key)
            XCTAssertNil(afterDelete)
            let headAfterDelete = try await backend.head(key)
            XCTAssertNil(headAfterDelete)
        }
    }

    func testAnEmptyObjectRoundTrips() async throws {
        try await withBackend(configuration(prefix: "")) { backend in
            let key = ObjectKey(type: .hash, key: Array("empty".utf8))
            let written = try await backend.put(key, bytes: [], condition: .none)
            XCTAssertEqual(written.size, 0)
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, [])
        }
    }

    func testMissingObjectsReadAsNilAndDeleteSucceeds() async throws {
        try await withBackend(configuration(prefix: "brain")) { backend in
            let key = ObjectKey(type: .string, key: Array("never-written".utf8))
            let read = try await backend.get(key)
            XCTAssertNil(read)
            let metadata = try await backend.head(key)
            XCTAssertNil(metadata)
            try await backend.delete(key, condition: .none)
        }
    }

    func testBinaryKeysAreStoredUnderTheirEncodedNamesReadableFromOutside() async throws {
        let moto = try XCTUnwrap(moto)
        let key = ObjectKey(
            type: .term, key: [0x00, 0xFF, UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: " "), UInt8(ascii: "a"), 0x2E])
        let value: [UInt8] = [131, 100, 0, 2, 111, 107, 0, 255]
        // A trailing slash on the prefix is tolerated; an empty prefix puts the type folder first.
        try await withBackend(configuration(prefix: "brain/test/")) { backend in
            _ = try await backend.put(key, bytes: value, condition: .none)
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, value)
        }
        try await withBackend(configuration(prefix: "")) { backend in
            _ = try await backend.put(key, bytes: value, condition: .none)
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, value)
        }
        // boto3 sees the literal `%XX` names and reads the same bytes without knowing Brain.
        let listing = try moto.runBoto3(
            """
            names = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="\(bucket)")["Contents"])
            print(json.dumps(names))
            print(list(s3.get_object(Bucket="\(bucket)", Key="term/%00%FF%25%2F%20a.")["Body"].read()))
            """)
        XCTAssertEqual(
            listing,
            """
            ["brain/test/term/%00%FF%25%2F%20a.", "term/%00%FF%25%2F%20a."]
            \(value)

            """)
    }

    func testIfNoneMatchCreatesOnceThenFailsThePrecondition() async throws {
        try await withBackend(configuration(prefix: "brain")) { backend in
            let key = ObjectKey(type: .string, key: Array("ring".utf8))
            let first = try await backend.put(key, bytes: Array("epoch 1".utf8), condition: .ifNoneExists)
            XCTAssertNotNil(first.etag)
            // moto answers 412 PreconditionFailed, as S3 does.
            let message = await assertBackendError(.preconditionFailed) {
                try await backend.put(key, bytes: Array("epoch 2".utf8), condition: .ifNoneExists)
            }
            XCTAssertEqual(message, "put brain/string/ring: HTTP 412 PreconditionFailed: At least one of the pre-conditions you specified did not hold")
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, Array("epoch 1".utf8))
        }
    }

    func testIfMatchWritesOnlyOverTheExpectedVersion() async throws {
        try await withBackend(configuration(prefix: "brain")) { backend in
            let key = ObjectKey(type: .string, key: Array("ring".utf8))
            let first = try await backend.put(key, bytes: Array("epoch 1".utf8), condition: .none)
            let second = try await backend.put(key, bytes: Array("epoch 2".utf8), condition: .ifMatch(try XCTUnwrap(first.etag)))
            XCTAssertNotEqual(second.etag, first.etag)
            // The first ETag is stale now.
            await assertBackendError(.preconditionFailed) {
                try await backend.put(key, bytes: Array("epoch 3".utf8), condition: .ifMatch(try XCTUnwrap(first.etag)))
            }
            await assertBackendError(.preconditionFailed) {
                try await backend.delete(key, condition: .ifMatch(try XCTUnwrap(first.etag)))
            }
            let read = try await backend.get(key)
            XCTAssertEqual(read?.bytes, Array("epoch 2".utf8))
            // If-Match on a missing object: moto answers 404 NoSuchKey, which means no object
            // has that ETag.
            await assertBackendError(.preconditionFailed) {
                try await backend.put(
                    ObjectKey(type: .string, key: Array("absent".utf8)), bytes: [1], condition: .ifMatch(try XCTUnwrap(first.etag)))
            }
            try await backend.delete(key, condition: .ifMatch(try XCTUnwrap(second.etag)))
            let gone = try await backend.head(key)
            XCTAssertNil(gone)
        }
    }

    func testAMissingBucketIsAnErrorNotAMissingObject() async throws {
        try await withBackend(configuration(prefix: "", bucket: "no-such-bucket")) { backend in
            let key = ObjectKey(type: .string, key: Array("k".utf8))
            let message = await assertBackendError(.failed) { try await backend.get(key) }
            XCTAssertEqual(message, "get string/k: HTTP 404 NoSuchBucket: The specified bucket does not exist")
            await assertBackendError(.failed) { try await backend.put(key, bytes: [1], condition: .none) }
        }
    }

    func testAnObjectLargerThanTheLimitFailsTheRead() async throws {
        var limited = configuration(prefix: "")
        limited.maximumObjectSize = 4
        try await withBackend(limited) { backend in
            let key = ObjectKey(type: .string, key: Array("big".utf8))
            _ = try await backend.put(key, bytes: Array(repeating: 7, count: 10), condition: .none)
            let message = await assertBackendError(.failed) { try await backend.get(key) }
            XCTAssertEqual(message, "get string/big: the object is larger than the limit of 4 bytes")
        }
    }
}

/// moto checking every signature (after the three IAM calls that create our key).
final class S3SignatureLiveTests: XCTestCase {
    var moto: MotoServer?

    override func setUp() async throws {
        guard MotoServer.isAvailable else { throw XCTSkip("python3 with moto and boto3 is not installed") }
        moto = try await MotoServer(unauthenticatedActions: 3)
    }

    override func tearDown() async throws {
        moto?.stop()
        moto = nil
    }

    func testMotoAcceptsOurSignaturesAndRefusesAWrongSecret() async throws {
        let moto = try XCTUnwrap(moto)
        let keys = try moto.runBoto3(
            """
            iam.create_user(UserName="brain")
            iam.put_user_policy(UserName="brain", PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
            key = iam.create_access_key(UserName="brain")["AccessKey"]
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """
        ).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(keys.count, 2)
        let credentials = S3Signer.Credentials(accessKeyID: keys[0], secretAccessKey: keys[1])
        let configuration = S3Configuration(
            bucket: "brain-signed", prefix: "brain", endpoint: moto.endpoint, credentials: credentials, requestTimeout: .seconds(10))

        let status = try await createBucket(configuration)
        XCTAssertEqual(status, 200, moto.logText)
        try await withBackend(configuration) { backend in
            // Plain key bytes: moto 5.2 miscomputes the signature of names holding `%` (boto3's
            // own requests fail there too), so signed requests are checked on names without one.
            let key = ObjectKey(type: .string, key: Array("user42".utf8))
            let written = try await backend.put(key, bytes: Array("signed".utf8), condition: .ifNoneExists)
            let read = try await backend.get(key)
            XCTAssertEqual(read, BackendObject(bytes: Array("signed".utf8), etag: written.etag))
            let metadata = try await backend.head(key)
            XCTAssertEqual(metadata, written)
            try await backend.delete(key, condition: .ifMatch(try XCTUnwrap(written.etag)))
            let gone = try await backend.get(key)
            XCTAssertNil(gone)
        }

        var wrong = configuration
        wrong.credentials.secretAccessKey = "not-the-secret"
        try await withBackend(wrong) { backend in
            let message = await assertBackendError(.accessDenied) {
                try await backend.get(ObjectKey(type: .string, key: Array("user42".utf8)))
            }
            XCTAssertTrue(message.hasPrefix("get brain/string/user42: HTTP 403 SignatureDoesNotMatch"), message)
        }
    }
}

/// A server that cannot be reached.
final class S3UnreachableTests: XCTestCase {
    func testAClosedPortIsUnavailableAndLoggedOncePerSecond() async throws {
        // Port 9 (discard) on loopback: nothing listens there in a test environment. The HTTP
        // client retries refused connections until the request's deadline, so each request
        // fails after the timeout; five concurrent ones fail within the same second.
        let log = CapturedLog()
        let configuration = S3Configuration(
            bucket: "brain-test", prefix: "brain", endpoint: "http://127.0.0.1:9",
            credentials: .init(accessKeyID: "testing", secretAccessKey: "testing"), requestTimeout: .milliseconds(500))
        let messages = try await withBackend(configuration, logger: log.logger) { backend in
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        await assertBackendError(.unavailable) {
                            try await backend.get(ObjectKey(type: .string, key: Array("k".utf8)))
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        XCTAssertEqual(messages.count, 5)
        for message in messages {
            XCTAssertTrue(message.hasPrefix("get brain/string/k: "), message)
        }
        // Failures are logged at most once a second (the limiter's exact timing is unit-tested
        // in S3ResponseMappingTests with an injected clock): five failures that end together
        // make fewer lines than failures, each naming the key and the cause.
        let lines = log.lines.filter { $0.message == "S3 request failed" }
        XCTAssertGreaterThanOrEqual(lines.count, 1)
        XCTAssertLessThan(lines.count, 5)
        XCTAssertEqual(lines.first?.level, .warning)
        XCTAssertEqual(lines.first?.metadata["key"], "brain/string/k")
        XCTAssertEqual(lines.first?.metadata["code"], "unavailable")
        XCTAssertEqual(lines.first?.metadata["op"], "get")
        XCTAssertTrue(messages.contains(lines.first?.metadata["cause"] ?? ""))
    }
}
