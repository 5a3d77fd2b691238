import Engine

/// The object operations of the S3 backend, as they appear in logs and error messages.
enum S3Operation: String, Sendable {
    case get, head, put, delete
}

/// What an HTTP answer from S3 means for the operation that asked. Pure, so every status is
/// tested without a server.
enum S3Outcome: Sendable, Equatable {
    /// The operation succeeded.
    case success
    /// The object does not exist (only for reads).
    case notFound
    /// The operation failed with this code.
    case failure(BackendError.Code)

    /// Maps an answer to an outcome.
    ///
    /// - 2xx: success.
    /// - 404: `nil` for get and head, success for an unconditional delete; a failed
    ///   precondition for an `If-Match` write or delete (no object has that ETag); `failed`
    ///   when S3 says the bucket itself is missing (`NoSuchBucket`).
    /// - 412: precondition failed. 409: conflict.
    /// - 429 and 503 (S3's `SlowDown`): throttled. Other 5xx: unavailable.
    /// - 401, 403: access denied. A 400 `ExpiredToken` too; a 400 `RequestTimeout` (the
    ///   body arrived too slowly) is unavailable.
    /// - Anything else: failed.
    static func of(
        status: Int, operation: S3Operation, condition: WriteCondition, errorCode: String?
    ) -> S3Outcome {
        switch status {
        case 200..<300:
            return .success
        case 404:
            if errorCode == "NoSuchBucket" { return .failure(.failed) }
            if case .ifMatch = condition { return .failure(.preconditionFailed) }
            switch operation {
            case .get, .head: return .notFound
            case .delete: return .success
            case .put: return .failure(.failed)
            }
        case 412:
            return .failure(.preconditionFailed)
        case 409:
            return .failure(.conflict)
        case 429, 503:
            return .failure(.throttled)
        case 500..<600:
            return .failure(.unavailable)
        case 401, 403:
            return .failure(.accessDenied)
        case 400:
            switch errorCode {
            case "RequestTimeout": return .failure(.unavailable)
            case "ExpiredToken", "InvalidToken", "TokenRefreshRequired": return .failure(.accessDenied)
            default: return .failure(.failed)
            }
        default:
            return .failure(.failed)
        }
    }
}

/// The `<Code>` and `<Message>` of an S3 error document
/// (`<Error><Code>NoSuchKey</Code><Message>...</Message>...</Error>`).
struct S3ErrorDocument: Sendable, Equatable {
    /// S3's error code, such as `SlowDown`.
    var code: String?
    /// S3's explanation.
    var message: String?

    /// Reads an error document. Anything else (an empty HEAD answer, HTML from a proxy)
    /// gives `nil` fields rather than an error. Text is cut at 256 bytes.
    init(parsing body: some Collection<UInt8>) {
        let bytes = Array(body.prefix(64 << 10))
        code = Self.element("Code", in: bytes)
        message = Self.element("Message", in: bytes)
    }

    init(code: String?, message: String?) {
        self.code = code
        self.message = message
    }

    private static func element(_ name: String, in bytes: [UInt8]) -> String? {
        let open = Array("<\(name)>".utf8)
        let close = Array("</\(name)>".utf8)
        guard let start = firstIndex(of: open, in: bytes, from: 0),
            let end = firstIndex(of: close, in: bytes, from: start + open.count)
        else { return nil }
        let text = unescaped(bytes[(start + open.count)..<end].prefix(256))
        return text.isEmpty ? nil : text
    }

    private static func firstIndex(of needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard needle.count <= bytes.count else { return nil }
        var index = from
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// Replaces XML's five predefined entities; other text is kept as it is.
    private static func unescaped(_ text: ArraySlice<UInt8>) -> String {
        let string = String(decoding: text, as: UTF8.self)
        guard string.contains("&") else { return string }
        return string.replacingEntities()
    }
}

extension String {
    fileprivate func replacingEntities() -> String {
        var out = ""
        var rest = Substring(self)
        let entities: [(String, String)] = [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&amp;", "&")]
        outer: while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let tail = rest[amp...]
            for (entity, character) in entities where tail.hasPrefix(entity) {
                out += character
                rest = tail.dropFirst(entity.count)
                continue outer
            }
            out += "&"
            rest = tail.dropFirst()
        }
        out += rest
        return out
    }
}

extension BackendError {
    /// The error for an S3 answer: `<op> <object>: HTTP <status> <Code>: <Message>`.
    static func s3(
        _ code: Code, operation: S3Operation, objectName: String, status: Int, document: S3ErrorDocument
    ) -> BackendError {
        var text = "\(operation.rawValue) \(objectName): HTTP \(status)"
        if let errorCode = document.code { text += " \(errorCode)" }
        if let message = document.message { text += ": \(message)" }
        return BackendError(code, text)
    }
}
