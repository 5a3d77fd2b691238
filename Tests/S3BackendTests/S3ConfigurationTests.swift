import Engine
import NIOHTTP1
import XCTest

@testable import S3Backend

/// Configuration parsing, object naming, URLs and the headers of built requests: no I/O.
final class S3ConfigurationTests: XCTestCase {
    static let credentials = S3Signer.Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
    static let environment = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"]

    func assertBackendError(
        _ expression: @autoclosure () throws -> some Any, mentions text: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            guard let error = error as? BackendError else {
                return XCTFail("not a BackendError: \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.code, .failed, file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "'\(error.message)' does not mention '\(text)'", file: file, line: line)
        }
    }

    // MARK: parse

    func testParseReadsBucketPrefixAndTheStandardVariables() throws {
        let configuration = try S3Configuration.parse(
            url: "s3://my-bucket/brain/prod/",
            environment: [
                "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "shh", "AWS_SESSION_TOKEN": "token",
                "AWS_REGION": "eu-west-1", "BRAIN_S3_ENDPOINT": "http://127.0.0.1:5000",
            ])
        XCTAssertEqual(configuration.bucket, "my-bucket")
        XCTAssertEqual(configuration.prefix, "brain/prod")
        XCTAssertEqual(configuration.region, "eu-west-1")
        XCTAssertEqual(configuration.endpoint, "http://127.0.0.1:5000")
        XCTAssertEqual(configuration.credentials, .init(accessKeyID: "AKID", secretAccessKey: "shh", sessionToken: "token"))
        XCTAssertEqual(configuration.description, "s3://my-bucket/brain/prod at http://127.0.0.1:5000")
        XCTAssertFalse(configuration.description.contains("shh"))
    }

    func testParseDefaultsRegionAndPrefixAndIgnoresEmptyVariables() throws {
        var environment = Self.environment
        environment["AWS_SESSION_TOKEN"] = ""
        environment["BRAIN_S3_ENDPOINT"] = ""
        let configuration = try S3Configuration.parse(url: "s3://my-bucket", environment: environment)
        XCTAssertEqual(configuration.prefix, "")
        XCTAssertEqual(configuration.region, "us-east-1")
        XCTAssertNil(configuration.endpoint)
        XCTAssertNil(configuration.credentials.sessionToken)
        XCTAssertEqual(configuration.description, "s3://my-bucket")

        environment["AWS_DEFAULT_REGION"] = "ap-south-1"
        XCTAssertEqual(try S3Configuration.parse(url: "s3://my-bucket/", environment: environment).region, "ap-south-1")
    }

    func testParseNamesWhatIsMissingOrBad() {
        assertBackendError(try S3Configuration.parse(url: "file:///tmp", environment: Self.environment), mentions: "s3://bucket/prefix")
        assertBackendError(try S3Configuration.parse(url: "s3:///prefix", environment: Self.environment), mentions: "names no bucket")
        assertBackendError(try S3Configuration.parse(url: "s3://My_Bucket", environment: Self.environment), mentions: "'My_Bucket' is invalid")
        assertBackendError(try S3Configuration.parse(url: "s3://my-bucket", environment: [:]), mentions: "AWS_ACCESS_KEY_ID is not set")
        assertBackendError(
            try S3Configuration.parse(url: "s3://my-bucket", environment: ["AWS_ACCESS_KEY_ID": "AKID"]),
            mentions: "AWS_SECRET_ACCESS_KEY is not set")
        var environment = Self.environment
        environment["AWS_REGION"] = "EU West"
        assertBackendError(try S3Configuration.parse(url: "s3://my-bucket", environment: environment), mentions: "region 'EU West'")
        for endpoint in ["127.0.0.1:5000", "ftp://host", "http://", "http://host:99999", "http://host/path", "http://u:p@host"] {
            environment = Self.environment
            environment["BRAIN_S3_ENDPOINT"] = endpoint
            assertBackendError(
                try S3Configuration.parse(url: "s3://my-bucket", environment: environment), mentions: "endpoint '\(endpoint)'")
        }
    }

    // MARK: Naming and URLs

    func testObjectNamesArePrefixTypeAndEncodedKey() throws {
        let key = ObjectKey(type: .string, key: Array("user:42".utf8))
        let prefixed = try S3Addressing(S3Configuration(bucket: "my-bucket", prefix: "/brain/", credentials: Self.credentials))
        XCTAssertEqual(prefixed.objectName(for: key), "brain/string/user%3A42")
        let bare = try S3Addressing(S3Configuration(bucket: "my-bucket", prefix: "", credentials: Self.credentials))
        XCTAssertEqual(bare.objectName(for: key), "string/user%3A42")
        XCTAssertEqual(bare.objectName(for: ObjectKey(type: .hash, key: [0x2E])), "hash/%2E")
    }

    func testVirtualHostURLsSendEachPercentOfTheNameAsPercent25() throws {
        let addressing = try S3Addressing(
            S3Configuration(bucket: "my-bucket", prefix: "brain", region: "eu-west-1", credentials: Self.credentials))
        let key = ObjectKey(type: .term, key: [0x00, 0xFF, UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: "a")])
        XCTAssertEqual(addressing.objectName(for: key), "brain/term/%00%FF%25%2Fa")
        XCTAssertEqual(addressing.authority, "my-bucket.s3.eu-west-1.amazonaws.com")
        XCTAssertEqual(addressing.path(for: key), "/brain/term/%2500%25FF%2525%252Fa")
        XCTAssertEqual(
            addressing.url(path: addressing.path(for: key)),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/brain/term/%2500%25FF%2525%252Fa")
        XCTAssertEqual(addressing.path(for: nil), "/")
    }

    func testAnEndpointMeansPathStyle() throws {
        let addressing = try S3Addressing(
            S3Configuration(bucket: "my-bucket", endpoint: "http://127.0.0.1:5000/", credentials: Self.credentials))
        let key = ObjectKey(type: .string, key: Array("a b".utf8))
        XCTAssertEqual(addressing.authority, "127.0.0.1:5000")
        XCTAssertEqual(addressing.url(path: addressing.path(for: key)), "http://127.0.0.1:5000/my-bucket/string/a%2520b")
        XCTAssertEqual(addressing.path(for: nil), "/my-bucket")
        let ipv6 = try S3Addressing(S3Configuration(bucket: "my-bucket", endpoint: "https://[::1]:9000", credentials: Self.credentials))
        XCTAssertEqual(ipv6.authority, "[::1]:9000")
        XCTAssertEqual(ipv6.scheme, "https")
    }

    // MARK: Built requests

    func signedHeaderNames(_ request: S3Request) throws -> String {
        let authorization = try XCTUnwrap(request.headers.first(name: "authorization"))
        let start = try XCTUnwrap(authorization.range(of: "SignedHeaders="))
        let rest = authorization[start.upperBound...]
        return String(rest[..<(try XCTUnwrap(rest.firstIndex(of: ",")))])
    }

    func testAGetSignsHostPayloadHashAndDate() throws {
        let builder = try S3RequestBuilder(configuration: S3Configuration(bucket: "my-bucket", credentials: Self.credentials))
        let request = builder.request(
            .GET, key: ObjectKey(type: .string, key: [1]), bodyLength: nil, payloadHash: S3Signer.emptyPayloadHash,
            condition: .none, date: AmzDate(secondsSince1970: 1_440_938_160), signingKey: nil)
        XCTAssertEqual(request.method, .GET)
        XCTAssertEqual(request.url, "https://my-bucket.s3.us-east-1.amazonaws.com/string/%2501")
        XCTAssertEqual(request.headers.first(name: "host"), "my-bucket.s3.us-east-1.amazonaws.com")
        XCTAssertEqual(request.headers.first(name: "x-amz-content-sha256"), S3Signer.emptyPayloadHash)
        XCTAssertEqual(request.headers.first(name: "x-amz-date"), "20150830T123600Z")
        XCTAssertEqual(try signedHeaderNames(request), "host;x-amz-content-sha256;x-amz-date")
        XCTAssertTrue(
            try XCTUnwrap(request.headers.first(name: "authorization"))
                .hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, "))
    }

    func testAConditionalPutSignsItsLengthConditionAndSessionToken() throws {
        var credentials = Self.credentials
        credentials.sessionToken = "token"
        let builder = try S3RequestBuilder(
            configuration: S3Configuration(bucket: "my-bucket", prefix: "p", endpoint: "http://127.0.0.1:5000", credentials: credentials))
        let body = Array("hello".utf8)
        let key = ObjectKey(type: .string, key: Array("k".utf8))
        let date = AmzDate(secondsSince1970: 1_440_938_160)
        let created = builder.request(
            .PUT, key: key, bodyLength: body.count, payloadHash: S3Signer.sha256Hex(body), condition: .ifNoneExists,
            date: date, signingKey: nil)
        XCTAssertEqual(created.url, "http://127.0.0.1:5000/my-bucket/p/string/k")
        XCTAssertEqual(created.headers.first(name: "content-length"), "5")
        XCTAssertEqual(created.headers.first(name: "if-none-match"), "*")
        XCTAssertEqual(created.headers.first(name: "x-amz-security-token"), "token")
        XCTAssertEqual(
            created.headers.first(name: "x-amz-content-sha256"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        XCTAssertEqual(
            try signedHeaderNames(created),
            "content-length;host;if-none-match;x-amz-content-sha256;x-amz-date;x-amz-security-token")

        let replaced = builder.request(
            .PUT, key: key, bodyLength: body.count, payloadHash: S3Signer.sha256Hex(body),
            condition: .ifMatch("\"5d41402abc4b2a76b9719d911017c592\""), date: date, signingKey: nil)
        XCTAssertEqual(replaced.headers.first(name: "if-match"), "\"5d41402abc4b2a76b9719d911017c592\"")
        XCTAssertNil(replaced.headers.first(name: "if-none-match"))
        XCTAssertEqual(
            try signedHeaderNames(replaced), "content-length;host;if-match;x-amz-content-sha256;x-amz-date;x-amz-security-token")
    }
}
