import Engine

/// Where and how the S3 backend stores objects.
///
/// Objects are named `<prefix>/<type>/<encoded key>` (`<type>/<encoded key>` when the prefix is
/// empty). With an ``endpoint`` requests use path-style addressing
/// (`<endpoint>/<bucket>/<object>`), as S3-compatible servers expect; without one they go to
/// `https://<bucket>.s3.<region>.amazonaws.com/<object>` (virtual-hosted style).
public struct S3Configuration: Sendable, Equatable, CustomStringConvertible {
    /// The bucket, which must already exist.
    public var bucket: String
    /// The folder of every object, without leading or trailing `/`; may be empty.
    public var prefix: String {
        didSet { prefix = Self.trimmedPrefix(prefix) }
    }
    /// The region that signs requests and, without an endpoint, picks the host.
    public var region: String
    /// An S3-compatible server such as `http://127.0.0.1:5000`, addressed path-style; `nil`
    /// for Amazon S3 itself.
    public var endpoint: String?
    /// The access key that signs every request.
    public var credentials: S3Signer.Credentials
    /// How long one request may take, from connecting to the last byte of the answer.
    public var requestTimeout: Duration
    /// The largest object a read accepts; a larger one fails the read instead of filling
    /// memory.
    public var maximumObjectSize: Int
    /// How many connections the backend keeps open to the server at most (beyond this,
    /// requests wait for a free connection).
    public var maximumConnections: Int

    /// A configuration from its parts; `prefix` loses any leading and trailing `/`.
    public init(
        bucket: String, prefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
        credentials: S3Signer.Credentials, requestTimeout: Duration = .seconds(30),
        maximumObjectSize: Int = 64 << 20, maximumConnections: Int = 64
    ) {
        self.bucket = bucket
        self.prefix = Self.trimmedPrefix(prefix)
        self.region = region
        self.endpoint = endpoint
        self.credentials = credentials
        self.requestTimeout = requestTimeout
        self.maximumObjectSize = maximumObjectSize
        self.maximumConnections = maximumConnections
    }

    /// `s3://bucket/prefix`, plus the endpoint when there is one. It holds no secret.
    public var description: String {
        let url = prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
        return endpoint.map { "\(url) at \($0)" } ?? url
    }

    /// The environment variables ``parse(url:environment:)`` reads.
    public enum Variable {
        /// The access key id (required).
        public static let accessKeyID = "AWS_ACCESS_KEY_ID"
        /// The secret access key (required).
        public static let secretAccessKey = "AWS_SECRET_ACCESS_KEY"
        /// A session token of temporary credentials (optional).
        public static let sessionToken = "AWS_SESSION_TOKEN"
        /// The region (optional, default `us-east-1`).
        public static let region = "AWS_REGION"
        /// The region as the AWS CLI names it, read when `AWS_REGION` is not set.
        public static let defaultRegion = "AWS_DEFAULT_REGION"
        /// An S3-compatible endpoint such as `http://127.0.0.1:5000` (optional).
        public static let endpoint = "BRAIN_S3_ENDPOINT"
    }

    /// Reads a backend URL `s3://bucket[/prefix]` and the standard AWS variables.
    ///
    /// An empty variable counts as unset. The prefix is taken literally (no percent-decoding).
    /// - Throws: ``BackendError`` with code `failed` and a message naming the missing or bad
    ///   part: a URL that is not `s3://`, a missing or invalid bucket, a missing access key
    ///   or secret, an invalid region or endpoint.
    public static func parse(url: String, environment: [String: String]) throws -> S3Configuration {
        guard url.hasPrefix("s3://") else {
            throw BackendError(.failed, "backend '\(url)' is not an S3 URL: expected s3://bucket/prefix")
        }
        let rest = url.dropFirst(5)
        if rest.contains("?") || rest.contains("#") {
            throw BackendError(.failed, "backend '\(url)' has a query or fragment: expected s3://bucket/prefix")
        }
        let bucket: Substring
        let prefix: Substring
        if let slash = rest.firstIndex(of: "/") {
            bucket = rest[..<slash]
            prefix = rest[rest.index(after: slash)...]
        } else {
            bucket = rest
            prefix = ""
        }
        if bucket.isEmpty {
            throw BackendError(.failed, "backend '\(url)' names no bucket: expected s3://bucket/prefix")
        }
        func value(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        guard let accessKeyID = value(Variable.accessKeyID) else {
            throw BackendError(.failed, "\(Variable.accessKeyID) is not set; the backend \(url) needs it")
        }
        guard let secret = value(Variable.secretAccessKey) else {
            throw BackendError(.failed, "\(Variable.secretAccessKey) is not set; the backend \(url) needs it")
        }
        let configuration = S3Configuration(
            bucket: String(bucket), prefix: String(prefix),
            region: value(Variable.region) ?? value(Variable.defaultRegion) ?? "us-east-1",
            endpoint: value(Variable.endpoint),
            credentials: .init(
                accessKeyID: accessKeyID, secretAccessKey: secret, sessionToken: value(Variable.sessionToken)))
        try configuration.validate()
        return configuration
    }

    /// Checks the bucket, region, endpoint and limits.
    /// - Throws: ``BackendError`` with code `failed`, naming what is wrong.
    public func validate() throws {
        _ = try S3Addressing(self)
        // S3 names are at most 1024 bytes; a name is the prefix, '/', the type folder (at
        // most 8), '/' and an encoded key of at most 750 characters.
        if prefix.utf8.count > 256 {
            throw BackendError(.failed, "the S3 prefix is \(prefix.utf8.count) bytes long; at most 256 keep object names within S3's 1024")
        }
        if requestTimeout <= .zero {
            throw BackendError(.failed, "the S3 request timeout must be positive, not \(requestTimeout)")
        }
        if maximumObjectSize <= 0 || maximumConnections <= 0 {
            throw BackendError(.failed, "the S3 object size and connection limits must be positive")
        }
    }

    private static func trimmedPrefix(_ prefix: String) -> String {
        var trimmed = Substring(prefix)
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }
}
