import Engine
import NIOHTTP1

/// Where an object lives on the wire: object names, URLs and the `Host` header. Pure: derived
/// once from an ``S3Configuration`` and then only read.
struct S3Addressing: Sendable {
    /// `http` or `https`.
    let scheme: String
    /// `host[:port]`, exactly as sent in the `Host` header and signed.
    let authority: String
    /// The encoded path of the bucket: `/<bucket>` in path style, empty in virtual-host style.
    let bucketPath: String
    /// The encoded `<prefix>/` of every object name, or empty.
    let encodedPrefix: String
    /// `<prefix>/`, or empty: what object names start with.
    let namePrefix: String

    /// Derives the addressing of a configuration.
    /// - Throws: ``BackendError`` with code `failed` for a bad bucket, region or endpoint.
    init(_ configuration: S3Configuration) throws {
        let bucket = configuration.bucket
        guard Self.isValidBucket(bucket) else {
            throw BackendError(
                .failed,
                "S3 bucket name '\(bucket)' is invalid: 3 to 63 characters of a-z, 0-9, '.' and '-', "
                    + "starting and ending with a letter or digit")
        }
        guard !configuration.region.isEmpty,
            configuration.region.utf8.allSatisfy({ Self.isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else {
            throw BackendError(.failed, "S3 region '\(configuration.region)' is invalid (expected a name such as us-east-1)")
        }
        if let endpoint = configuration.endpoint {
            (scheme, authority) = try Self.parseEndpoint(endpoint)
            bucketPath = "/" + bucket
        } else {
            scheme = "https"
            authority = "\(bucket).s3.\(configuration.region).amazonaws.com"
            bucketPath = ""
        }
        namePrefix = configuration.prefix.isEmpty ? "" : configuration.prefix + "/"
        encodedPrefix = S3Signer.encodePath(namePrefix)
    }

    /// The object's name in the bucket: `<prefix>/<type>/<encoded key>`. Its `%` characters
    /// are literal parts of the name.
    func objectName(for key: ObjectKey) -> String {
        namePrefix + key.relativeName
    }

    /// The request path of an object, URI-encoded once (so each `%` of the name is sent as
    /// `%25`), or of the bucket itself when `key` is `nil`.
    func path(for key: ObjectKey?) -> String {
        guard let key else { return bucketPath.isEmpty ? "/" : bucketPath }
        var path: [UInt8] = []
        let relative = key.relativeName
        path.reserveCapacity(bucketPath.utf8.count + 1 + encodedPrefix.utf8.count + relative.utf8.count * 3)
        path.append(contentsOf: bucketPath.utf8)
        path.append(UInt8(ascii: "/"))
        path.append(contentsOf: encodedPrefix.utf8)
        S3Signer.percentEncode(relative.utf8, keepingSlash: true, into: &path)
        return String(decoding: path, as: UTF8.self)
    }

    /// The absolute URL of a request path.
    func url(path: String) -> String {
        scheme + "://" + authority + path
    }

    /// Splits `http[s]://host[:port][/]` into its scheme and authority.
    static func parseEndpoint(_ endpoint: String) throws -> (scheme: String, authority: String) {
        func bad(_ why: String) -> BackendError {
            BackendError(.failed, "S3 endpoint '\(endpoint)' is invalid: \(why) (expected such as http://127.0.0.1:5000)")
        }
        let scheme: String
        let rest: Substring
        if endpoint.hasPrefix("http://") {
            scheme = "http"
            rest = endpoint.dropFirst(7)
        } else if endpoint.hasPrefix("https://") {
            scheme = "https"
            rest = endpoint.dropFirst(8)
        } else {
            throw bad("the scheme must be http:// or https://")
        }
        var authority = rest
        while authority.hasSuffix("/") { authority = authority.dropLast() }
        if authority.isEmpty { throw bad("it names no host") }
        if authority.contains("/") { throw bad("it must not have a path") }
        if authority.contains("@") { throw bad("it must not carry user information") }
        if authority.contains("?") || authority.contains("#") { throw bad("it must not have a query") }
        // A port, when present, follows the last ':' outside an IPv6 literal's brackets.
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            let port = authority[authority.index(after: colon)...]
            guard let number = Int(port), (1...65535).contains(number) else { throw bad("the port is not a number from 1 to 65535") }
            if authority[..<colon].isEmpty { throw bad("it names no host") }
        }
        return (scheme, String(authority))
    }

    private static func isValidBucket(_ bucket: String) -> Bool {
        let bytes = bucket.utf8
        guard (3...63).contains(bytes.count), let first = bytes.first, let last = bytes.last,
            isLowerAlphanumeric(first), isLowerAlphanumeric(last)
        else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// One S3 request ready to send: method, URL and signed headers. Building it is pure.
struct S3Request: Sendable {
    var method: HTTPMethod
    var url: String
    var headers: HTTPHeaders
}

/// Builds signed S3 requests for objects of one configuration. Pure: the time and the signing
/// key are arguments.
struct S3RequestBuilder: Sendable {
    let addressing: S3Addressing
    let signer: S3Signer

    /// A builder for a configuration.
    /// - Throws: ``BackendError`` with code `failed` for a bad bucket, region or endpoint.
    init(configuration: S3Configuration) throws {
        addressing = try S3Addressing(configuration)
        signer = S3Signer(credentials: configuration.credentials, region: configuration.region, service: "s3", pathMode: .s3)
    }

    /// A signed request on an object (or, with `key` `nil`, on the bucket).
    ///
    /// It signs `host`, `x-amz-content-sha256` and `x-amz-date`, the session token when there
    /// is one, the condition's header, and for a body its `content-length`.
    func request(
        _ method: HTTPMethod, key: ObjectKey?, bodyLength: Int?, payloadHash: String, condition: WriteCondition,
        date: AmzDate, signingKey: S3Signer.SigningKey?
    ) -> S3Request {
        let path = addressing.path(for: key)
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(8)
        headers.append((name: "host", value: addressing.authority))
        if let bodyLength {
            headers.append((name: "content-length", value: String(bodyLength)))
        }
        switch condition {
        case .none: break
        case .ifMatch(let etag): headers.append((name: "if-match", value: etag))
        case .ifNoneExists: headers.append((name: "if-none-match", value: "*"))
        }
        let signature = signer.sign(
            method: method.rawValue, path: path, headers: headers, payloadHash: payloadHash, sendsPayloadHash: true,
            date: date, signingKey: signingKey)
        headers.append(contentsOf: signature.headers)
        return S3Request(method: method, url: addressing.url(path: path), headers: HTTPHeaders(headers))
    }
}
