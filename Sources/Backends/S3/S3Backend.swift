import AsyncHTTPClient
import Engine
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ``Backend`` over Amazon S3 or an S3-compatible server, signing its own requests with
/// ``S3Signer``.
///
/// Each operation is one HTTP request on a shared connection pool: no retries (the
/// write-back retries), no chunked uploads (every PUT has a `Content-Length`), no redirects.
/// Errors are ``BackendError``s whose message names the object and S3's error code and
/// message; they are also logged, at most one line per second, with a count of the lines
/// left out.
public final class S3Backend: Backend {
    /// The configuration the backend was made with.
    public let configuration: S3Configuration
    private let builder: S3RequestBuilder
    private let client: HTTPClient
    private let logger: Logger
    private let timeout: TimeAmount
    private let secondsSince1970: @Sendable () -> Int64
    private let signingKey: Mutex<S3Signer.SigningKey?>
    private let errorLog = Mutex(LogRateLimiter())

    /// A backend for `configuration`, with its own HTTP connection pool on the shared event
    /// loop group.
    ///
    /// - Parameters:
    ///   - configuration: The bucket, prefix, endpoint and credentials.
    ///   - logger: Where failures are reported.
    ///   - secondsSince1970: The wall clock that dates signatures (UTC seconds); S3 refuses a
    ///     signature more than 15 minutes off its own clock.
    /// - Throws: ``BackendError`` with code `failed` when the configuration is invalid.
    public init(
        configuration: S3Configuration, logger: Logger,
        secondsSince1970: @escaping @Sendable () -> Int64 = S3Backend.systemSecondsSince1970
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.builder = try S3RequestBuilder(configuration: configuration)
        self.logger = logger
        self.secondsSince1970 = secondsSince1970
        self.signingKey = Mutex(nil)
        let timeout = TimeAmount.nanoseconds(Self.nanoseconds(configuration.requestTimeout))
        self.timeout = timeout
        var http = HTTPClient.Configuration()
        http.redirectConfiguration = .disallow
        // A short connect timeout: the client retries a refused connection until it, and a
        // read-through of a key not in memory should fail fast while the backend is down.
        http.timeout = .init(connect: min(timeout, .seconds(3)), read: timeout)
        http.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maximumConnections)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    /// `s3://bucket/prefix`, and the endpoint when there is one.
    public var description: String { configuration.description }

    /// The name of a key's object in the bucket: `<prefix>/<type>/<encoded key>`.
    public func objectName(for key: ObjectKey) -> String {
        builder.addressing.objectName(for: key)
    }

    /// Reads an object with `GET`; `nil` on 404.
    public func get(_ key: ObjectKey) async throws -> BackendObject? {
        let response = try await send(.get, key: key, body: nil, condition: .none)
        guard let response else { return nil }
        do {
            let buffer = try await response.body.collect(upTo: configuration.maximumObjectSize)
            return BackendObject(bytes: Array(buffer.readableBytesView), etag: response.headers.first(name: "etag"))
        } catch {
            throw failure(Self.transportError(error, .get, objectName(for: key), limit: configuration.maximumObjectSize), .get, key)
        }
    }

    /// Reads an object's ETag and size with `HEAD`; `nil` on 404.
    public func head(_ key: ObjectKey) async throws -> ObjectMetadata? {
        guard let response = try await send(.head, key: key, body: nil, condition: .none) else { return nil }
        await drain(response)
        guard let length = response.headers.first(name: "content-length").flatMap({ Int($0) }) else {
            throw failure(BackendError(.failed, "head \(objectName(for: key)): the answer has no Content-Length"), .head, key)
        }
        return ObjectMetadata(etag: response.headers.first(name: "etag"), size: length)
    }

    /// Writes an object with one `PUT` carrying its length, the condition as `If-Match` or
    /// `If-None-Match: *`, and returns the new ETag.
    public func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata {
        guard let response = try await send(.put, key: key, body: bytes, condition: condition) else {
            // `send` answers nil only for reads.
            throw failure(BackendError(.failed, "put \(objectName(for: key)): unexpected 404"), .put, key)
        }
        await drain(response)
        return ObjectMetadata(etag: response.headers.first(name: "etag"), size: bytes.count)
    }

    /// Deletes an object with `DELETE`; an object that does not exist counts as deleted
    /// unless the condition is `ifMatch`.
    public func delete(_ key: ObjectKey, condition: WriteCondition) async throws {
        if let response = try await send(.delete, key: key, body: nil, condition: condition) {
            await drain(response)
        }
    }

    /// Closes the connection pool. No call may follow.
    public func shutdown() async throws {
        do {
            try await client.shutdown()
        } catch {
            throw BackendError(.failed, "closing the S3 connection pool of \(description): \(error)")
        }
    }

    /// The wall clock: seconds since 1970-01-01T00:00:00Z.
    @Sendable public static func systemSecondsSince1970() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec)
    }

    // MARK: Requests

    /// Sends one request. Returns the response of a success, `nil` for a read of a missing
    /// object (or a delete of one, which is a success), and throws a logged ``BackendError``
    /// otherwise.
    private func send(
        _ operation: S3Operation, key: ObjectKey, body: [UInt8]?, condition: WriteCondition
    ) async throws -> HTTPClientResponse? {
        let method: HTTPMethod =
            switch operation {
            case .get: .GET
            case .head: .HEAD
            case .put: .PUT
            case .delete: .DELETE
            }
        let date = AmzDate(secondsSince1970: secondsSince1970())
        let prepared = builder.request(
            method, key: key, bodyLength: body?.count,
            payloadHash: body.map { S3Signer.sha256Hex($0) } ?? S3Signer.emptyPayloadHash, condition: condition,
            date: date, signingKey: signingKey(for: date))
        var request = HTTPClientRequest(url: prepared.url)
        request.method = prepared.method
        request.headers = prepared.headers
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
        }

        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw failure(Self.transportError(error, operation, objectName(for: key), limit: nil), operation, key)
        }
        let status = Int(response.status.code)
        if (200..<300).contains(status) { return response }

        // An error answer: its XML body says why.
        let document: S3ErrorDocument
        if operation == .head {
            document = S3ErrorDocument(code: nil, message: nil)
            await drain(response)
        } else {
            let body = (try? await response.body.collect(upTo: 64 << 10)) ?? ByteBuffer()
            document = S3ErrorDocument(parsing: body.readableBytesView)
        }
        switch S3Outcome.of(status: status, operation: operation, condition: condition, errorCode: document.code) {
        case .success:
            return nil
        case .notFound:
            return nil
        case .failure(let code):
            let error = BackendError.s3(
                code, operation: operation, objectName: objectName(for: key), status: status, document: document)
            throw failure(error, operation, key)
        }
    }

    /// Reads and discards the rest of a body, so the connection goes back to the pool.
    private func drain(_ response: HTTPClientResponse) async {
        _ = try? await response.body.collect(upTo: 1 << 20)
    }

    /// The signing key of `date`'s day, derived once a day.
    private func signingKey(for date: AmzDate) -> S3Signer.SigningKey {
        let dateStamp = date.dateStamp
        if let key = signingKey.withLock({ $0 }), key.dateStamp == dateStamp { return key }
        let key = builder.signer.signingKey(for: date)
        signingKey.withLock { $0 = key }
        return key
    }

    /// Logs a failure (rate-limited) and returns it for throwing. Failed preconditions are
    /// expected answers to conditional writes and logged only at debug level.
    private func failure(_ error: BackendError, _ operation: S3Operation, _ key: ObjectKey) -> BackendError {
        if error.code == .preconditionFailed {
            logger.debug("S3 precondition failed", metadata: ["key": "\(objectName(for: key))", "op": "\(operation.rawValue)"])
            return error
        }
        let now = NIODeadline.now().uptimeNanoseconds
        guard let suppressed = errorLog.withLock({ $0.admit(now: now) }) else { return error }
        var metadata: Logger.Metadata = [
            "backend": "\(description)", "op": "\(operation.rawValue)", "key": "\(objectName(for: key))",
            "code": "\(error.code.rawValue)", "cause": "\(error.message)",
        ]
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.log(level: error.isRetryable ? .warning : .error, "S3 request failed", metadata: metadata)
        return error
    }

    /// Maps an error of the HTTP client (no answer, or a body that could not be read) to a
    /// ``BackendError``.
    static func transportError(_ error: any Error, _ operation: S3Operation, _ objectName: String, limit: Int?) -> BackendError {
        let prefix = "\(operation.rawValue) \(objectName)"
        if let error = error as? BackendError { return error }
        if error is NIOTooManyBytesError {
            return BackendError(.failed, "\(prefix): the object is larger than the limit of \(limit ?? 0) bytes")
        }
        if error is CancellationError {
            return BackendError(.unavailable, "\(prefix): cancelled")
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return BackendError(.unavailable, "\(prefix): timed out (\(error))")
            case .alreadyShutdown:
                return BackendError(.failed, "\(prefix): the backend is shut down")
            case .invalidURL, .emptyHost, .emptyScheme:
                return BackendError(.failed, "\(prefix): \(error)")
            default:
                return BackendError(.unavailable, "\(prefix): \(error)")
            }
        }
        return BackendError(.unavailable, "\(prefix): \(error)")
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow
            ? Int64.max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
