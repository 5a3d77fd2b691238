import Foundation
import XCTest

@testable import S3Backend

/// The signer against every case of the AWS SigV4 test suite (generic mode) and against the
/// four examples of the S3 documentation (S3 mode).
final class S3SignerVectorTests: XCTestCase {
    /// One case folder: what to sign and what AWS says the results are.
    struct VectorCase {
        var name: String
        var context: Context
        var request: String
        var canonicalRequest: String
        var stringToSign: String
        var signedRequest: String
        var signature: String

        struct Context: Decodable {
            struct Credentials: Decodable {
                var access_key_id: String
                var secret_access_key: String
                var token: String?
            }
            var credentials: Credentials
            var normalize: Bool
            var region: String
            var service: String
            var sign_body: Bool
            var timestamp: String
            var omit_session_token: Bool?
        }
    }

    /// A request of `request.txt`: request line, headers (folded lines kept), body.
    struct ParsedRequest {
        var method: String
        var path: String
        var query: String
        var headers: [(name: String, value: String)]
        /// The request line and header lines exactly as written, without the final newline.
        var head: String
        var body: String
    }

    static func vectorsDirectory() throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: "Vectors", withExtension: nil), "the Vectors resource is missing")
    }

    static func loadCases() throws -> [VectorCase] {
        let directory = try vectorsDirectory()
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(
                atPath: directory.appendingPathComponent(name).path, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
        return try names.map { name in
            let folder = directory.appendingPathComponent(name)
            func text(_ file: String) throws -> String {
                try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            }
            return VectorCase(
                name: name,
                context: try JSONDecoder().decode(
                    VectorCase.Context.self, from: Data(contentsOf: folder.appendingPathComponent("context.json"))),
                request: try text("request.txt"),
                canonicalRequest: try text("header-canonical-request.txt"),
                stringToSign: try text("header-string-to-sign.txt"),
                signedRequest: try text("header-signed-request.txt"),
                signature: try text("header-signature.txt"))
        }
    }

    static func parse(_ text: String) throws -> ParsedRequest {
        let head: Substring
        let body: Substring
        if let blank = text.range(of: "\n\n") {
            head = text[..<blank.lowerBound]
            body = text[blank.upperBound...]
        } else {
            head = text.hasSuffix("\n") ? text.dropLast() : Substring(text)
            body = ""
        }
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false)[...]
        let requestLine = try XCTUnwrap(lines.popFirst())
        let firstSpace = try XCTUnwrap(requestLine.firstIndex(of: " "))
        let lastSpace = try XCTUnwrap(requestLine.lastIndex(of: " "))
        let method = String(requestLine[..<firstSpace])
        let target = requestLine[requestLine.index(after: firstSpace)..<lastSpace]
        let path: Substring
        let query: Substring
        if let question = target.firstIndex(of: "?") {
            path = target[..<question]
            query = target[target.index(after: question)...]
        } else {
            path = target
            query = ""
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            if line.first == " " || line.first == "\t" {
                // A folded line continues the previous header's value.
                headers[headers.count - 1].value += "\n" + line
            } else {
                let colon = try XCTUnwrap(line.firstIndex(of: ":"))
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        return ParsedRequest(
            method: method, path: String(path), query: String(query), headers: headers, head: String(head),
            body: String(body))
    }

    static func seconds(_ timestamp: String) throws -> Int64 {
        let date = try XCTUnwrap(ISO8601DateFormatter().date(from: timestamp), "bad timestamp \(timestamp)")
        return Int64(date.timeIntervalSince1970)
    }

    func testEveryCaseOfTheAWSSuiteSignsAsExpected() throws {
        let cases = try Self.loadCases()
        // The suite has 38 cases; none may go missing silently.
        XCTAssertEqual(cases.count, 38)
        for vector in cases {
            let request = try Self.parse(vector.request)
            let context = vector.context
            let signer = S3Signer(
                credentials: .init(
                    accessKeyID: context.credentials.access_key_id,
                    secretAccessKey: context.credentials.secret_access_key,
                    sessionToken: context.credentials.token),
                region: context.region, service: context.service,
                pathMode: .generic(normalizePath: context.normalize),
                signsSessionToken: !(context.omit_session_token ?? false))
            let signature = signer.sign(
                method: request.method, path: request.path, query: request.query, headers: request.headers,
                payloadHash: S3Signer.sha256Hex(Array(request.body.utf8)), sendsPayloadHash: context.sign_body,
                date: AmzDate(secondsSince1970: try Self.seconds(context.timestamp)))

            XCTAssertEqual(
                String(decoding: signature.canonicalRequest, as: UTF8.self), vector.canonicalRequest,
                "canonical request of \(vector.name)")
            XCTAssertEqual(
                String(decoding: signature.stringToSign, as: UTF8.self), vector.stringToSign,
                "string to sign of \(vector.name)")
            XCTAssertEqual(signature.signature, vector.signature, "signature of \(vector.name)")
            let added = signature.headers.map { "\($0.name):\($0.value)" }.joined(separator: "\n")
            XCTAssertEqual(
                request.head + "\n" + added + "\n\n" + request.body, vector.signedRequest,
                "signed request of \(vector.name)")
        }
    }

    // MARK: S3 mode: the examples of the S3 documentation

    static let exampleSigner = S3Signer(
        credentials: .init(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "s3", pathMode: .s3)
    /// 20130524T000000Z.
    static let exampleDate = AmzDate(secondsSince1970: 1_369_353_600)
    static let exampleHost = (name: "Host", value: "examplebucket.s3.amazonaws.com")

    func testS3ExampleGetObjectWithRange() {
        let signature = Self.exampleSigner.sign(
            method: "GET", path: "/test.txt", headers: [Self.exampleHost, ("Range", "bytes=0-9")],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertEqual(signature.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        XCTAssertEqual(
            signature.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        XCTAssertEqual(
            String(decoding: signature.canonicalRequest, as: UTF8.self),
            """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
    }

    func testS3ExamplePutObjectEncodesThePathOnce() {
        let path = S3Signer.encodePath("/test$file.text")
        XCTAssertEqual(path, "/test%24file.text")
        let body = Array("Welcome to Amazon S3.".utf8)
        let signature = Self.exampleSigner.sign(
            method: "PUT", path: path,
            headers: [
                Self.exampleHost, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            payloadHash: S3Signer.sha256Hex(body), sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertEqual(signature.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        XCTAssertTrue(
            signature.authorization.contains("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"))
        // S3 mode signs the path as sent: encoded once, `%24` and not `%2524`.
        XCTAssertTrue(String(decoding: signature.canonicalRequest, as: UTF8.self).hasPrefix("PUT\n/test%24file.text\n\n"))
    }

    func testS3ExampleGetBucketLifecycle() {
        let signature = Self.exampleSigner.sign(
            method: "GET", path: "/", query: "lifecycle", headers: [Self.exampleHost],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertEqual(signature.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        XCTAssertTrue(String(decoding: signature.canonicalRequest, as: UTF8.self).hasPrefix("GET\n/\nlifecycle=\n"))
    }

    func testS3ExampleListObjects() {
        let signature = Self.exampleSigner.sign(
            method: "GET", path: "/", query: "max-keys=2&prefix=J", headers: [Self.exampleHost],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertEqual(signature.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    // MARK: Parts

    func testS3ModeNeitherNormalizesNorReencodesThePath() {
        let signature = Self.exampleSigner.sign(
            method: "GET", path: "/a//b/../%25", headers: [Self.exampleHost],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertTrue(String(decoding: signature.canonicalRequest, as: UTF8.self).hasPrefix("GET\n/a//b/../%25\n"))
    }

    func testGenericModeEncodesThePathAgain() {
        var signer = Self.exampleSigner
        signer.pathMode = .generic(normalizePath: false)
        let signature = signer.sign(
            method: "GET", path: "/a%20b", headers: [Self.exampleHost],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: false, date: Self.exampleDate)
        XCTAssertTrue(String(decoding: signature.canonicalRequest, as: UTF8.self).hasPrefix("GET\n/a%2520b\n"))
    }

    func testNormalizationResolvesDotSegmentsAsRFC3986() {
        XCTAssertEqual(String(decoding: S3Signer.normalizedPath("/a/b/../c/./d"), as: UTF8.self), "/a/c/d")
        XCTAssertEqual(String(decoding: S3Signer.normalizedPath("/a/b/.."), as: UTF8.self), "/a/")
        XCTAssertEqual(String(decoding: S3Signer.normalizedPath("/../.."), as: UTF8.self), "/")
        XCTAssertEqual(String(decoding: S3Signer.normalizedPath(""), as: UTF8.self), "/")
    }

    func testEncodePathKeepsUnreservedAndSlashAndEncodesEverythingElse() {
        XCTAssertEqual(S3Signer.encodePath("/AZaz09-._~/x"), "/AZaz09-._~/x")
        XCTAssertEqual(S3Signer.encodePath("/a b%+=&?#\u{00E9}"), "/a%20b%25%2B%3D%26%3F%23%C3%A9")
    }

    func testAReusedSigningKeyGivesTheSameSignature() {
        let key = Self.exampleSigner.signingKey(for: Self.exampleDate)
        XCTAssertEqual(key.dateStamp, "20130524")
        let headers = [Self.exampleHost]
        let fresh = Self.exampleSigner.sign(
            method: "GET", path: "/", query: "lifecycle", headers: headers, payloadHash: S3Signer.emptyPayloadHash,
            sendsPayloadHash: true, date: Self.exampleDate)
        let reused = Self.exampleSigner.sign(
            method: "GET", path: "/", query: "lifecycle", headers: headers, payloadHash: S3Signer.emptyPayloadHash,
            sendsPayloadHash: true, date: Self.exampleDate, signingKey: key)
        XCTAssertEqual(fresh.signature, reused.signature)
        // A key of another day is not used: the signature is that of the request's day.
        let tomorrow = Self.exampleSigner.signingKey(for: AmzDate(secondsSince1970: 1_369_353_600 + 86_400))
        let stale = Self.exampleSigner.sign(
            method: "GET", path: "/", query: "lifecycle", headers: headers, payloadHash: S3Signer.emptyPayloadHash,
            sendsPayloadHash: true, date: Self.exampleDate, signingKey: tomorrow)
        XCTAssertEqual(stale.signature, fresh.signature)
    }

    func testSignerHeadersPassedByTheCallerAreIgnored() {
        let signature = Self.exampleSigner.sign(
            method: "GET", path: "/test.txt",
            headers: [Self.exampleHost, ("Range", "bytes=0-9"), ("X-Amz-Date", "19700101T000000Z"), ("Authorization", "x")],
            payloadHash: S3Signer.emptyPayloadHash, sendsPayloadHash: true, date: Self.exampleDate)
        XCTAssertEqual(signature.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    func testAmzDateFormatsUTC() {
        XCTAssertEqual(AmzDate(secondsSince1970: 0).timestamp, "19700101T000000Z")
        XCTAssertEqual(AmzDate(secondsSince1970: 1_440_938_160).timestamp, "20150830T123600Z")
        XCTAssertEqual(AmzDate(secondsSince1970: 1_440_938_160).dateStamp, "20150830")
        // A leap day; 2100 is no leap year, so its February 28th is followed by March 1st.
        XCTAssertEqual(AmzDate(secondsSince1970: 951_782_400).timestamp, "20000229T000000Z")
        XCTAssertEqual(AmzDate(secondsSince1970: 4_107_542_399).timestamp, "21000228T235959Z")
        XCTAssertEqual(AmzDate(secondsSince1970: 4_107_542_400).timestamp, "21000301T000000Z")
        XCTAssertEqual(AmzDate(secondsSince1970: 4_133_980_799).timestamp, "21001231T235959Z")
    }

    func testAmzDateAgreesWithFoundationOverCenturies() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withYear, .withMonth, .withDay, .withTime, .withTimeZone]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var seconds: Int64 = 0
        while seconds < 7_000_000_000 {
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
                .replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
            XCTAssertEqual(AmzDate(secondsSince1970: seconds).timestamp, expected)
            seconds += 86_400 * 37 + 3_607
        }
    }
}
