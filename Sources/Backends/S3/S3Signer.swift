import Crypto

/// AWS Signature Version 4 (header-based), as a pure function of the request, the credentials
/// and the time.
///
/// The signer does no I/O and reads no clock: the signing time is an argument, so every result
/// is reproducible. It implements the two flavours of canonical URI that AWS services use:
/// S3's (the path exactly as sent, encoded once by the caller, never normalized) and every other
/// service's (the path URI-encoded again, and optionally normalized). The canonical request is
/// built in one byte buffer; hashing and HMACs run over contiguous memory without copies.
public struct S3Signer: Sendable {
    /// The access key that signs requests.
    public struct Credentials: Sendable, Equatable {
        /// The access key id, sent in the clear in the `Credential=` part of `Authorization`.
        public var accessKeyID: String
        /// The secret access key; it never appears in any output of the signer.
        public var secretAccessKey: String
        /// A temporary session token, sent as `X-Amz-Security-Token` when present.
        public var sessionToken: String?

        /// Credentials from their parts.
        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// How the request path becomes the canonical URI.
    public enum PathMode: Sendable, Equatable {
        /// Amazon S3: the canonical URI is the request path exactly as it is sent, which the
        /// caller has URI-encoded once (see ``encodePath(_:)``). It is not normalized, so
        /// `//`, `.` and `..` are parts of object names.
        case s3
        /// Every other AWS service: the request path is URI-encoded (again), so a `%` in it
        /// becomes `%25`. With `normalizePath`, empty segments and `.`/`..` segments are
        /// resolved first, as RFC 3986 removes dot segments.
        case generic(normalizePath: Bool)
    }

    /// A key derived for one day, region and service: reusable for every request signed that
    /// day, which saves four HMACs per request.
    public struct SigningKey: Sendable {
        /// The `YYYYMMDD` day the key is valid for.
        public let dateStamp: String
        let key: SymmetricKey
    }

    /// The outcome of signing: what to add to the request, and the intermediate texts AWS
    /// documents (useful to compare with a server's `SignatureDoesNotMatch` answer).
    public struct Signature: Sendable {
        /// The canonical request, as hashed.
        public var canonicalRequest: [UInt8]
        /// The string to sign, as HMAC'ed.
        public var stringToSign: [UInt8]
        /// The signature, 64 lower-case hex digits.
        public var signature: String
        /// The headers the caller must add to the request, in this order:
        /// `X-Amz-Security-Token` (when there is a session token), `X-Amz-Date`,
        /// `x-amz-content-sha256` (when requested) and `Authorization`.
        public var headers: [(name: String, value: String)]

        /// The value of the `Authorization` header.
        public var authorization: String { headers[headers.count - 1].value }
    }

    /// The hex SHA-256 of an empty payload: the payload hash of every GET, HEAD and DELETE.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Whose key signs.
    public var credentials: Credentials
    /// The region in the credential scope, such as `us-east-1`.
    public var region: String
    /// The service in the credential scope: `s3` for S3.
    public var service: String
    /// How the path is canonicalized.
    public var pathMode: PathMode
    /// Whether the session token is part of the signed headers. S3 requires it; some
    /// services (and one case of the AWS test suite) add the token after signing.
    public var signsSessionToken: Bool

    /// A signer for one set of credentials, region and service.
    public init(
        credentials: Credentials, region: String, service: String = "s3", pathMode: PathMode = .s3,
        signsSessionToken: Bool = true
    ) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.pathMode = pathMode
        self.signsSessionToken = signsSessionToken
    }

    /// Derives the signing key for `date`'s day:
    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    public func signingKey(for date: AmzDate) -> SigningKey {
        var secret: [UInt8] = Array("AWS4".utf8)
        secret.append(contentsOf: credentials.secretAccessKey.utf8)
        var key = SymmetricKey(data: secret)
        for part in [date.dateStamp, region, service, "aws4_request"] {
            key = SymmetricKey(data: Self.hmac(key: key, part.utf8))
        }
        return SigningKey(dateStamp: date.dateStamp, key: key)
    }

    /// Signs a request.
    ///
    /// - Parameters:
    ///   - method: The HTTP method, such as `GET`.
    ///   - path: The path exactly as it goes on the request line, without the query. In
    ///     ``PathMode/s3`` it must already be URI-encoded (``encodePath(_:)``); an empty path
    ///     signs as `/`.
    ///   - query: The query string without `?`, possibly empty. Parameters are decoded, then
    ///     re-encoded and sorted, so `a=%E1%88%B4` and the raw UTF-8 sign alike.
    ///   - headers: The headers to sign, which must include `host`. Names are matched without
    ///     regard to case; repeated names are joined with `,` in their order; values are
    ///     trimmed and runs of white space become one space. Any `authorization`,
    ///     `x-amz-date`, `x-amz-security-token` or `x-amz-content-sha256` among them is
    ///     ignored: the signer supplies those.
    ///   - payloadHash: The hex SHA-256 of the body (``emptyPayloadHash`` for none).
    ///   - sendsPayloadHash: Whether to add and sign `x-amz-content-sha256` (S3 requires it).
    ///   - date: The signing time.
    ///   - signingKey: A key from ``signingKey(for:)``; derived here when absent or for
    ///     another day.
    /// - Returns: The signature and the headers to add.
    public func sign(
        method: String, path: String, query: String = "", headers: [(name: String, value: String)],
        payloadHash: String, sendsPayloadHash: Bool, date: AmzDate, signingKey: SigningKey? = nil
    ) -> Signature {
        // The headers that take part in the signature: the caller's, then the signer's own.
        var signed: [(name: String, value: String)] = []
        signed.reserveCapacity(headers.count + 3)
        for header in headers where !Self.isSignerHeader(header.name) {
            signed.append(header)
        }
        signed.append((name: "x-amz-date", value: date.timestamp))
        if sendsPayloadHash {
            signed.append((name: "x-amz-content-sha256", value: payloadHash))
        }
        if signsSessionToken, let token = credentials.sessionToken {
            signed.append((name: "x-amz-security-token", value: token))
        }
        // Sorted by lower-cased name; equal names keep their order so repeated values join
        // in the order they were given.
        let order = signed.indices.sorted { a, b in
            switch Self.compareIgnoringASCIICase(signed[a].name, signed[b].name) {
            case .less: true
            case .greater: false
            case .equal: a < b
            }
        }

        var canonical: [UInt8] = []
        canonical.reserveCapacity(256 + path.utf8.count * 3 + query.utf8.count * 3)
        canonical.append(contentsOf: method.utf8)
        canonical.append(Self.newline)
        appendCanonicalURI(path, to: &canonical)
        canonical.append(Self.newline)
        Self.appendCanonicalQuery(query, to: &canonical)
        canonical.append(Self.newline)

        var signedHeaderNames: [UInt8] = []
        signedHeaderNames.reserveCapacity(order.count * 16)
        var previous: Int? = nil
        for index in order {
            let header = signed[index]
            if let previous, Self.compareIgnoringASCIICase(signed[previous].name, header.name) == .equal {
                // A repeated header: its value joins the previous line.
                canonical.removeLast()
                canonical.append(UInt8(ascii: ","))
            } else {
                if previous != nil { signedHeaderNames.append(UInt8(ascii: ";")) }
                Self.appendLowercased(header.name, to: &signedHeaderNames)
                Self.appendLowercased(header.name, to: &canonical)
                canonical.append(UInt8(ascii: ":"))
            }
            Self.appendTrimmedValue(header.value, to: &canonical)
            canonical.append(Self.newline)
            previous = index
        }
        canonical.append(Self.newline)
        canonical.append(contentsOf: signedHeaderNames)
        canonical.append(Self.newline)
        canonical.append(contentsOf: payloadHash.utf8)

        let scope = "\(date.dateStamp)/\(region)/\(service)/aws4_request"
        var stringToSign: [UInt8] = []
        stringToSign.reserveCapacity(32 + 17 + scope.utf8.count + 65)
        stringToSign.append(contentsOf: "AWS4-HMAC-SHA256\n".utf8)
        stringToSign.append(contentsOf: date.timestamp.utf8)
        stringToSign.append(Self.newline)
        stringToSign.append(contentsOf: scope.utf8)
        stringToSign.append(Self.newline)
        Self.appendHex(SHA256.hash(data: canonical), to: &stringToSign)

        let key: SigningKey =
            if let signingKey, signingKey.dateStamp == date.dateStamp { signingKey } else { self.signingKey(for: date) }
        var signatureHex: [UInt8] = []
        signatureHex.reserveCapacity(64)
        Self.appendHex(Self.hmac(key: key.key, stringToSign), to: &signatureHex)
        let signature = String(decoding: signatureHex, as: UTF8.self)

        var authorization: [UInt8] = []
        authorization.reserveCapacity(64 + credentials.accessKeyID.utf8.count + scope.utf8.count
            + signedHeaderNames.count + 64)
        authorization.append(contentsOf: "AWS4-HMAC-SHA256 Credential=".utf8)
        authorization.append(contentsOf: credentials.accessKeyID.utf8)
        authorization.append(UInt8(ascii: "/"))
        authorization.append(contentsOf: scope.utf8)
        authorization.append(contentsOf: ", SignedHeaders=".utf8)
        authorization.append(contentsOf: signedHeaderNames)
        authorization.append(contentsOf: ", Signature=".utf8)
        authorization.append(contentsOf: signatureHex)

        var added: [(name: String, value: String)] = []
        added.reserveCapacity(4)
        if let token = credentials.sessionToken {
            added.append((name: "X-Amz-Security-Token", value: token))
        }
        added.append((name: "X-Amz-Date", value: date.timestamp))
        if sendsPayloadHash {
            added.append((name: "x-amz-content-sha256", value: payloadHash))
        }
        added.append((name: "Authorization", value: String(decoding: authorization, as: UTF8.self)))
        return Signature(canonicalRequest: canonical, stringToSign: stringToSign, signature: signature, headers: added)
    }

    // MARK: Encoding

    /// Encodes an S3 object path once, as S3 expects on the request line and in the canonical
    /// URI: every byte except the unreserved `A-Z a-z 0-9 - . _ ~` and `/` becomes `%XX`
    /// (upper-case hex). A `%` in the input is therefore kept literally in the object name.
    public static func encodePath(_ path: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count + 16)
        percentEncode(path.utf8, keepingSlash: true, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `bytes` URI-encoded as SigV4 defines it: unreserved bytes as they are, `/` as
    /// it is when `keepingSlash`, every other byte as `%XX` with upper-case hex.
    public static func percentEncode(
        _ bytes: some Sequence<UInt8>, keepingSlash: Bool, into out: inout [UInt8]
    ) {
        for byte in bytes {
            if isUnreserved(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0F)])
            }
        }
    }

    /// The lower-case hex SHA-256 of `bytes`: the `x-amz-content-sha256` of a body.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        var out: [UInt8] = []
        out.reserveCapacity(64)
        appendHex(hasher.finalize(), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Canonical parts

    private func appendCanonicalURI(_ path: String, to out: inout [UInt8]) {
        if path.isEmpty {
            out.append(UInt8(ascii: "/"))
            return
        }
        switch pathMode {
        case .s3:
            out.append(contentsOf: path.utf8)
        case .generic(normalizePath: false):
            Self.percentEncode(path.utf8, keepingSlash: true, into: &out)
        case .generic(normalizePath: true):
            Self.percentEncode(Self.normalizedPath(path), keepingSlash: true, into: &out)
        }
    }

    /// Removes empty, `.` and `..` segments. The result starts with `/` and ends with `/`
    /// when the input ended in a directory (`/`, `/.` or `/..`).
    static func normalizedPath(_ path: String) -> [UInt8] {
        var segments: [Substring.UTF8View] = []
        let utf8 = Substring(path).utf8
        for segment in utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.elementsEqual(".".utf8) { continue }
            if segment.elementsEqual("..".utf8) {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        var out: [UInt8] = [UInt8(ascii: "/")]
        for (index, segment) in segments.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: segment)
        }
        let endsInDirectory =
            path.utf8.last == UInt8(ascii: "/") || path.hasSuffix("/.") || path.hasSuffix("/..")
        if endsInDirectory && !segments.isEmpty { out.append(UInt8(ascii: "/")) }
        return out
    }

    private static func appendCanonicalQuery(_ query: String, to out: inout [UInt8]) {
        if query.isEmpty { return }
        var parameters: [(key: [UInt8], value: [UInt8])] = []
        for piece in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            var key: [UInt8] = []
            var value: [UInt8] = []
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                percentEncode(percentDecoded(piece[piece.startIndex..<equals]), keepingSlash: false, into: &key)
                percentEncode(percentDecoded(piece[piece.index(after: equals)...]), keepingSlash: false, into: &value)
            } else {
                percentEncode(percentDecoded(piece), keepingSlash: false, into: &key)
            }
            parameters.append((key, value))
        }
        parameters.sort { a, b in
            a.key.lexicographicallyPrecedes(b.key)
                || (a.key == b.key && a.value.lexicographicallyPrecedes(b.value))
        }
        for (index, parameter) in parameters.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: parameter.key)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: parameter.value)
        }
    }

    /// Decodes `%XX` escapes; a `%` not followed by two hex digits stays a `%`.
    private static func percentDecoded(_ bytes: Substring.UTF8View) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            guard byte == UInt8(ascii: "%"), index != bytes.endIndex else {
                out.append(byte)
                continue
            }
            let second = bytes.index(after: index)
            guard second != bytes.endIndex, let high = hexValue(bytes[index]), let low = hexValue(bytes[second]) else {
                out.append(byte)
                continue
            }
            out.append(high << 4 | low)
            index = bytes.index(after: second)
        }
        return out
    }

    /// Appends a header value with leading and trailing white space removed and every inner
    /// run of white space (folded lines included) replaced by one space.
    private static func appendTrimmedValue(_ value: String, to out: inout [UInt8]) {
        var pendingSpace = false
        var started = false
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                pendingSpace = started
            default:
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                started = true
                out.append(byte)
            }
        }
    }

    // MARK: Bytes

    private static let newline = UInt8(ascii: "\n")
    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)
    private static let lowerHex: [UInt8] = Array("0123456789abcdef".utf8)

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    private static func isSignerHeader(_ name: String) -> Bool {
        for own in ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]
        where compareIgnoringASCIICase(name, own) == .equal {
            return true
        }
        return false
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    private static func appendLowercased(_ name: String, to out: inout [UInt8]) {
        for byte in name.utf8 { out.append(lowercased(byte)) }
    }

    private enum Order { case less, equal, greater }

    private static func compareIgnoringASCIICase(_ a: String, _ b: String) -> Order {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next().map(lowercased), right.next().map(lowercased)) {
            case (nil, nil): return .equal
            case (nil, _): return .less
            case (_, nil): return .greater
            case let (x?, y?):
                if x < y { return .less }
                if x > y { return .greater }
            }
        }
    }

    private static func appendHex(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        for byte in bytes {
            out.append(lowerHex[Int(byte >> 4)])
            out.append(lowerHex[Int(byte & 0x0F)])
        }
    }

    private static func hmac(key: SymmetricKey, _ message: some Sequence<UInt8>) -> HashedAuthenticationCode<SHA256> {
        var authenticator = HMAC<SHA256>(key: key)
        let done: Void? = message.withContiguousStorageIfAvailable {
            authenticator.update(data: UnsafeRawBufferPointer($0))
        }
        if done == nil {
            authenticator.update(data: Array(message))
        }
        return authenticator.finalize()
    }
}

/// A signing time: the `X-Amz-Date` timestamp and the day of the credential scope, computed
/// from seconds since 1970-01-01T00:00:00Z (UTC), with no calendar library and no clock.
public struct AmzDate: Sendable, Equatable {
    /// Seconds since the Unix epoch, UTC.
    public let secondsSince1970: Int64
    /// `YYYYMMDDTHHMMSSZ`, such as `20150830T123600Z`.
    public let timestamp: String

    /// `YYYYMMDD`, the first eight characters of ``timestamp``.
    public var dateStamp: String { String(timestamp.prefix(8)) }

    /// The signing time `secondsSince1970` seconds after the epoch. Times before 1970 and
    /// after 9999 are clamped to those years' bounds, which no server would accept anyway.
    public init(secondsSince1970: Int64) {
        let seconds = min(max(secondsSince1970, 0), 253_402_300_799)
        self.secondsSince1970 = seconds
        let days = seconds / 86_400
        let secondOfDay = seconds % 86_400
        let (year, month, day) = Self.civilDate(daysSince1970: days)
        var text: [UInt8] = []
        text.reserveCapacity(16)
        func append(_ value: Int64, digits: Int) {
            var divisor: Int64 = 1
            for _ in 1..<digits { divisor *= 10 }
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
                divisor /= 10
            }
        }
        append(year, digits: 4)
        append(month, digits: 2)
        append(day, digits: 2)
        text.append(UInt8(ascii: "T"))
        append(secondOfDay / 3600, digits: 2)
        append(secondOfDay / 60 % 60, digits: 2)
        append(secondOfDay % 60, digits: 2)
        text.append(UInt8(ascii: "Z"))
        timestamp = String(decoding: text, as: UTF8.self)
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01, by shifting to eras of
    /// 400 years that start on March 1st (so the leap day is the last day of a year).
    static func civilDate(daysSince1970: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = daysSince1970 + 719_468  // days from 0000-03-01 to 1970-01-01
        let era = shifted / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153  // 0 = March
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
