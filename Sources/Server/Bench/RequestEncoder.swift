/// The protocols `brain bench` speaks.
enum WireProtocol: String, CaseIterable, Sendable {
    /// Brain's line protocol: `get k\n`, `set k v\n`; replies `-v`, `null`, `1`/`0`,
    /// `error <code>: ...`, each ended by `\r\n`.
    case brain
    /// memcached's text protocol: `get k\r\n`, `set k 0 0 N\r\nv\r\n`.
    case memcached
    /// Redis's RESP: `*2\r\n$3\r\nGET\r\n...`, `*3\r\n$3\r\nSET\r\n...`.
    case redis
}

/// How a key index becomes a key: `key:` then the index in decimal, zero-padded to a fixed
/// width so that every key of a run has the same length (`key:00000042`).
struct KeyFormat: Sendable, Equatable {
    /// The text before the digits.
    static let prefix: [UInt8] = Array("key:".utf8)
    /// How many digits every key has.
    let width: Int

    /// The format for key indexes `0 ..< keyCount`: at least 8 digits, more when needed.
    init(keyCount: Int) {
        var digits = 1
        var limit = 10
        while limit < keyCount {
            digits += 1
            limit = limit > Int.max / 10 ? Int.max : limit * 10
        }
        width = max(8, digits)
    }

    /// The length of every key.
    var length: Int { Self.prefix.count + width }

    /// Appends key number `index` (≥ 0, fewer than 10^width) to `out`.
    func append(_ index: Int, to out: inout [UInt8]) {
        out.append(contentsOf: Self.prefix)
        let end = out.count + width
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
        var rest = index
        var position = end - 1
        while rest > 0 {
            out[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            position -= 1
        }
    }

    /// Key number `index` as text.
    func key(_ index: Int) -> String {
        var bytes: [UInt8] = []
        append(index, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Encodes `get` and `set` requests of one protocol into a connection's outbound bytes.
///
/// Values come from a ``ValuePool`` whose bytes need no escaping, so every protocol carries
/// exactly the same key and value bytes.
struct RequestEncoder: Sendable {
    /// The protocol of every request.
    let wire: WireProtocol
    /// How key indexes become keys.
    let keys: KeyFormat
    /// Where values come from.
    let values: ValuePool

    private static let brainGet: [UInt8] = Array("get ".utf8)
    private static let brainSet: [UInt8] = Array("set ".utf8)
    private static let memcachedFlags: [UInt8] = Array(" 0 0 ".utf8)
    private static let crlf: [UInt8] = [0x0D, 0x0A]
    private static let redisGet: [UInt8] = Array("*2\r\n$3\r\nGET\r\n$".utf8)
    private static let redisSet: [UInt8] = Array("*3\r\n$3\r\nSET\r\n$".utf8)

    /// Appends a request reading key number `key`.
    func appendGet(key: Int, to out: inout [UInt8]) {
        switch wire {
        case .brain:
            out.append(contentsOf: Self.brainGet)
            keys.append(key, to: &out)
            out.append(0x0A)
        case .memcached:
            out.append(contentsOf: Self.brainGet)
            keys.append(key, to: &out)
            out.append(contentsOf: Self.crlf)
        case .redis:
            out.append(contentsOf: Self.redisGet)
            Self.appendDecimal(keys.length, to: &out)
            out.append(contentsOf: Self.crlf)
            keys.append(key, to: &out)
            out.append(contentsOf: Self.crlf)
        }
    }

    /// Appends a request storing value number `value` of the pool under key number `key`.
    func appendSet(key: Int, value: Int, to out: inout [UInt8]) {
        switch wire {
        case .brain:
            out.append(contentsOf: Self.brainSet)
            keys.append(key, to: &out)
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: values.value(value))
            out.append(0x0A)
        case .memcached:
            out.append(contentsOf: Self.brainSet)
            keys.append(key, to: &out)
            out.append(contentsOf: Self.memcachedFlags)
            Self.appendDecimal(values.length(value), to: &out)
            out.append(contentsOf: Self.crlf)
            out.append(contentsOf: values.value(value))
            out.append(contentsOf: Self.crlf)
        case .redis:
            out.append(contentsOf: Self.redisSet)
            Self.appendDecimal(keys.length, to: &out)
            out.append(contentsOf: Self.crlf)
            keys.append(key, to: &out)
            out.append(contentsOf: Self.crlf)
            out.append(UInt8(ascii: "$"))
            Self.appendDecimal(values.length(value), to: &out)
            out.append(contentsOf: Self.crlf)
            out.append(contentsOf: values.value(value))
            out.append(contentsOf: Self.crlf)
        }
    }

    /// Appends `number` (≥ 0) in decimal.
    static func appendDecimal(_ number: Int, to out: inout [UInt8]) {
        var divisor = 1
        while divisor <= number / 10 { divisor *= 10 }
        var rest = number
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
