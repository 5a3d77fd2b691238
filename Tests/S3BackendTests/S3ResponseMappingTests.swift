import AsyncHTTPClient
import Engine
import NIOCore
import XCTest

@testable import S3Backend

/// What each S3 answer and each transport failure becomes, and the log rate limit: no I/O.
final class S3ResponseMappingTests: XCTestCase {
    func outcome(
        _ status: Int, _ operation: S3Operation, _ condition: WriteCondition = .none, code: String? = nil
    ) -> S3Outcome {
        S3Outcome.of(status: status, operation: operation, condition: condition, errorCode: code)
    }

    func testSuccessStatuses() {
        for operation in [S3Operation.get, .head, .put, .delete] {
            XCTAssertEqual(outcome(200, operation), .success)
            XCTAssertEqual(outcome(204, operation), .success)
        }
    }

    func testNotFoundIsNilForReadsAndSuccessForAnUnconditionalDelete() {
        XCTAssertEqual(outcome(404, .get, code: "NoSuchKey"), .notFound)
        XCTAssertEqual(outcome(404, .head), .notFound)
        XCTAssertEqual(outcome(404, .delete, code: "NoSuchKey"), .success)
        XCTAssertEqual(outcome(404, .delete, .ifNoneExists), .success)
        // If-Match on a missing object: no object has that ETag.
        XCTAssertEqual(outcome(404, .put, .ifMatch("\"e\""), code: "NoSuchKey"), .failure(.preconditionFailed))
        XCTAssertEqual(outcome(404, .delete, .ifMatch("\"e\""), code: "NoSuchKey"), .failure(.preconditionFailed))
        // A missing bucket is a configuration error, never an absent object.
        XCTAssertEqual(outcome(404, .get, code: "NoSuchBucket"), .failure(.failed))
        XCTAssertEqual(outcome(404, .delete, code: "NoSuchBucket"), .failure(.failed))
        XCTAssertEqual(outcome(404, .put, code: "NoSuchBucket"), .failure(.failed))
    }

    func testConditionsThrottlingAndServerErrors() {
        XCTAssertEqual(outcome(412, .put, .ifNoneExists, code: "PreconditionFailed"), .failure(.preconditionFailed))
        XCTAssertEqual(outcome(412, .delete, .ifMatch("\"e\"")), .failure(.preconditionFailed))
        XCTAssertEqual(outcome(409, .put, .ifMatch("\"e\""), code: "ConditionalRequestConflict"), .failure(.conflict))
        XCTAssertEqual(outcome(503, .put, code: "SlowDown"), .failure(.throttled))
        XCTAssertEqual(outcome(429, .get), .failure(.throttled))
        XCTAssertEqual(outcome(500, .get, code: "InternalError"), .failure(.unavailable))
        XCTAssertEqual(outcome(502, .head), .failure(.unavailable))
        XCTAssertEqual(outcome(504, .delete), .failure(.unavailable))
    }

    func testAuthenticationAndOtherClientErrors() {
        XCTAssertEqual(outcome(403, .get, code: "SignatureDoesNotMatch"), .failure(.accessDenied))
        XCTAssertEqual(outcome(403, .head), .failure(.accessDenied))
        XCTAssertEqual(outcome(401, .put), .failure(.accessDenied))
        XCTAssertEqual(outcome(400, .get, code: "ExpiredToken"), .failure(.accessDenied))
        XCTAssertEqual(outcome(400, .put, code: "RequestTimeout"), .failure(.unavailable))
        XCTAssertEqual(outcome(400, .put, code: "InvalidArgument"), .failure(.failed))
        XCTAssertEqual(outcome(301, .get, code: "PermanentRedirect"), .failure(.failed))
        XCTAssertEqual(outcome(411, .put, code: "MissingContentLength"), .failure(.failed))
    }

    func testErrorDocumentsAreParsedIntoTheMessage() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>SlowDown</Code><Message>Please reduce your request rate &amp; retry.</Message>\
            <RequestId>4442587FB7D0A2F9</RequestId></Error>
            """
        let document = S3ErrorDocument(parsing: Array(xml.utf8))
        XCTAssertEqual(document, S3ErrorDocument(code: "SlowDown", message: "Please reduce your request rate & retry."))
        let error = BackendError.s3(.throttled, operation: .put, objectName: "p/string/k", status: 503, document: document)
        XCTAssertEqual(error.code, .throttled)
        XCTAssertEqual(error.message, "put p/string/k: HTTP 503 SlowDown: Please reduce your request rate & retry.")
        XCTAssertTrue(error.isRetryable)

        let empty = S3ErrorDocument(parsing: [UInt8]())
        XCTAssertEqual(empty, S3ErrorDocument(code: nil, message: nil))
        XCTAssertEqual(
            BackendError.s3(.accessDenied, operation: .head, objectName: "string/k", status: 403, document: empty).message,
            "head string/k: HTTP 403")
        XCTAssertEqual(S3ErrorDocument(parsing: Array("<html><Code>".utf8)), S3ErrorDocument(code: nil, message: nil))
    }

    func testTransportFailuresAreUnavailableUnlessTheyCannotBeRetried() {
        let timeout = S3Backend.transportError(HTTPClientError.deadlineExceeded, .get, "string/k", limit: nil)
        XCTAssertEqual(timeout.code, .unavailable)
        XCTAssertTrue(timeout.message.hasPrefix("get string/k: timed out"))
        XCTAssertEqual(S3Backend.transportError(HTTPClientError.connectTimeout, .put, "k", limit: nil).code, .unavailable)
        XCTAssertEqual(S3Backend.transportError(HTTPClientError.remoteConnectionClosed, .put, "k", limit: nil).code, .unavailable)
        XCTAssertEqual(S3Backend.transportError(CancellationError(), .put, "k", limit: nil).code, .unavailable)
        XCTAssertEqual(S3Backend.transportError(HTTPClientError.alreadyShutdown, .put, "k", limit: nil).code, .failed)
        let tooBig = S3Backend.transportError(NIOTooManyBytesError(maxBytes: 10), .get, "string/k", limit: 10)
        XCTAssertEqual(tooBig.code, .failed)
        XCTAssertEqual(tooBig.message, "get string/k: the object is larger than the limit of 10 bytes")
    }

    func testTheLogLimiterLetsOneLinePerSecondAndCountsTheRest() {
        var limiter = LogRateLimiter(intervalNanoseconds: 1_000_000_000)
        XCTAssertEqual(limiter.admit(now: 5_000_000_000), 0)
        XCTAssertNil(limiter.admit(now: 5_000_000_001))
        XCTAssertNil(limiter.admit(now: 5_999_999_999))
        XCTAssertEqual(limiter.admit(now: 6_000_000_000), 2)
        XCTAssertEqual(limiter.admit(now: 9_000_000_000), 0)
    }
}
