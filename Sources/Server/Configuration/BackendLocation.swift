/// Where a node keeps its records: the parsed form of the `backend` setting.
///
/// Its ``description`` is the URL form, which ``parse(_:)`` reads back to an equal value.
enum BackendLocation: Sendable, Equatable, CustomStringConvertible {
    /// A directory on the local disk (`file:///abs/path`); `path` is absolute, as written.
    case file(path: String)
    /// An S3 bucket (`s3://bucket/prefix`); `prefix` has no leading or trailing `/` and may
    /// be empty.
    case s3(bucket: String, prefix: String)
    /// Records live only in memory and are lost at exit (`memory://`); for tests.
    case memory

    /// The URL form: `file:///abs/path`, `s3://bucket/prefix` (or `s3://bucket`), `memory://`.
    var description: String {
        switch self {
        case .file(let path): "file://\(path)"
        case .s3(let bucket, let prefix): prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
        case .memory: "memory://"
        }
    }

    /// The location `text` names. The scheme is case-insensitive; the rest is taken as
    /// written (no percent-decoding).
    static func parse(_ text: String) throws(InvalidValue) -> BackendLocation {
        guard let separator = text.firstRange(of: "://") else {
            throw InvalidValue("not a backend URL; use file:///abs/path, s3://bucket/prefix or memory://")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        let rest = String(text[separator.upperBound...])
        switch scheme {
        case "file":
            guard rest.hasPrefix("/") else {
                throw InvalidValue("file:// needs an absolute path, with three slashes: file:///var/lib/brain")
            }
            guard !rest.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw InvalidValue("the path holds a control character")
            }
            return .file(path: rest)
        case "s3":
            let bucket = rest.prefix { $0 != "/" }
            guard !bucket.isEmpty else {
                throw InvalidValue("s3:// needs a bucket name: s3://bucket or s3://bucket/prefix")
            }
            guard bucket.utf8.allSatisfy(isBucketByte) else {
                throw InvalidValue("bucket name \"\(bucket)\" may hold only letters, digits, '.', '-' and '_'")
            }
            let prefix = rest.dropFirst(bucket.count).trimmingSlashes()
            guard !prefix.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw InvalidValue("the prefix holds a control character")
            }
            return .s3(bucket: String(bucket), prefix: prefix)
        case "memory":
            guard rest.isEmpty else { throw InvalidValue("memory:// takes nothing after it") }
            return .memory
        default:
            throw InvalidValue(
                "unknown backend scheme \"\(scheme)\"; use file:///abs/path, s3://bucket/prefix or memory://")
        }
    }

    private static func isBucketByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}

extension Substring {
    /// The text without leading and trailing `/`.
    fileprivate func trimmingSlashes() -> String {
        String(drop { $0 == "/" }.reversed().drop { $0 == "/" }.reversed())
    }
}

/// Why one value was rejected, without the key or source: the caller that knows them wraps
/// it into a ``ConfigurationError``.
struct InvalidValue: Error, Sendable, Equatable {
    /// What is wrong and, where possible, what a good value looks like.
    var reason: String

    /// Creates the rejection with its reason.
    init(_ reason: String) { self.reason = reason }
}
