/// The kind of value an entry holds. The raw value is stable: it is part of the append-only
/// log format and of metrics labels.
public enum EntryType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Bytes, persisted to the backend as exactly those bytes.
    case string = 0
    /// Bytes that are never written to the backend (Brain2's `vset`).
    case volatile = 1
    /// Field/value pairs, persisted as one JSON object (Brain2's hashes).
    case hash = 2
    /// An Erlang term, held and persisted in the External Term Format (`term_to_binary`).
    case term = 3

    /// The folder of this type in the backend: `<prefix>/<folder>/<encoded key>`.
    public var folder: String {
        switch self {
        case .string: "string"
        case .volatile: "volatile"
        case .hash: "hash"
        case .term: "term"
        }
    }

    public var description: String { folder }

    /// Whether entries of this type are written back to the backend.
    public var isPersisted: Bool { self != .volatile }
}

/// The name of one object in a backend: the entry's type and its key's bytes.
///
/// A backend maps it to a name of its own with ``ObjectName``; every backend uses the same
/// layout, so an object is found at the same relative path in S3 and on a local disk.
public struct ObjectKey: Hashable, Sendable, CustomStringConvertible {
    public var type: EntryType
    public var key: [UInt8]

    public init(type: EntryType, key: [UInt8]) {
        self.type = type
        self.key = key
    }

    /// `<folder>/<encoded key>`, the object's name relative to the backend's prefix.
    public var relativeName: String { ObjectName.relativeName(of: self) }

    public var description: String { relativeName }
}

/// An object read from a backend.
public struct BackendObject: Sendable, Equatable {
    /// The object's bytes.
    public var bytes: [UInt8]
    /// The entity tag the backend reports for these bytes, used for conditional writes.
    public var etag: String?

    public init(bytes: [UInt8], etag: String?) {
        self.bytes = bytes
        self.etag = etag
    }
}

/// What a backend reports of an object without its bytes.
public struct ObjectMetadata: Sendable, Equatable {
    public var etag: String?
    public var size: Int

    public init(etag: String?, size: Int) {
        self.etag = etag
        self.size = size
    }
}

/// A precondition on a write, as HTTP's `If-Match` and `If-None-Match`.
public enum WriteCondition: Sendable, Equatable {
    /// Write unconditionally.
    case none
    /// Write only if the object's current ETag is this one.
    case ifMatch(String)
    /// Write only if no object exists (`If-None-Match: *`).
    case ifNoneExists
}

/// Where entries live when they are not in memory: S3 in production, a directory in
/// development, memory in tests.
///
/// A backend stores one object per ``ObjectKey``. Every method is safe to call concurrently,
/// for different keys and for the same key. Errors are ``BackendError``s; a backend never
/// throws anything else.
public protocol Backend: Sendable {
    /// A short description for logs, with no secret in it (`s3://bucket/prefix`).
    var description: String { get }

    /// Reads an object. Returns `nil` when it does not exist.
    func get(_ key: ObjectKey) async throws -> BackendObject?

    /// Reads an object's metadata. Returns `nil` when it does not exist.
    func head(_ key: ObjectKey) async throws -> ObjectMetadata?

    /// Writes an object whole and returns its new metadata. Throws
    /// ``BackendError/Code/preconditionFailed`` when `condition` does not hold.
    func put(_ key: ObjectKey, bytes: [UInt8], condition: WriteCondition) async throws -> ObjectMetadata

    /// Deletes an object. Deleting an object that does not exist succeeds.
    func delete(_ key: ObjectKey, condition: WriteCondition) async throws

    /// Releases the backend's resources. No call may follow.
    func shutdown() async throws
}

/// The one error type of every backend.
public struct BackendError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in terms the write-back can act on.
    public enum Code: String, Sendable {
        /// A condition (`If-Match`, `If-None-Match`) did not hold: HTTP 412.
        case preconditionFailed = "precondition_failed"
        /// A concurrent conditional write raced this one: HTTP 409. Retry.
        case conflict
        /// The backend asked us to slow down: HTTP 503 SlowDown, 429. Retry later.
        case throttled
        /// The backend could not be reached, timed out, or failed: 5xx, connection errors. Retry.
        case unavailable
        /// Credentials were refused: HTTP 401/403. Retrying will not help until fixed.
        case accessDenied = "access_denied"
        /// Anything else: a bad request, a malformed answer, a local I/O error.
        case failed
    }

    public var code: Code
    /// A human-readable account of the failure, naming the key where there is one.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether a retry may succeed without anything else changing.
    public var isRetryable: Bool {
        switch code {
        case .conflict, .throttled, .unavailable, .failed: true
        case .preconditionFailed, .accessDenied: false
        }
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The reversible, filename- and URL-safe encoding of keys into object names.
///
/// Bytes `A-Z a-z 0-9 - _ ~` and `.` (except as the first byte) stand for themselves; every
/// other byte becomes `%XX` with upper-case hex. The result is never empty, never `.` or
/// `..`, contains no `/`, and decodes back to exactly the original bytes, binary ones
/// included. A key of 250 bytes encodes to at most 750 characters.
public enum ObjectName {
    /// `<folder>/<encoded key>`.
    public static func relativeName(of key: ObjectKey) -> String {
        key.type.folder + "/" + encode(key.key)
    }

    /// Encodes key bytes; see the type's description.
    public static func encode(_ key: [UInt8]) -> String {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(key.count)
        for (index, byte) in key.enumerated() {
            let plain: Bool
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                plain = true
            case UInt8(ascii: "."):
                plain = index > 0
            default:
                plain = false
            }
            if plain {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes an encoded key; returns `nil` for a name that ``encode(_:)`` cannot produce.
    public static func decode(_ name: String) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = name.utf8.makeIterator()
        func nibble(_ c: UInt8?) -> UInt8? {
            guard let c else { return nil }
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let c = bytes.next() {
            if c == UInt8(ascii: "%") {
                guard let high = nibble(bytes.next()), let low = nibble(bytes.next()) else { return nil }
                out.append(high << 4 | low)
            } else {
                out.append(c)
            }
        }
        guard !out.isEmpty, encode(out) == name else { return nil }
        return out
    }
}
