/// A hash: Brain2's field → value record, persisted as one JSON object
/// (`{"name":"Ann","hp":"100"}`).
///
/// Fields keep the order they were first set in, and ``json()`` writes them in that order.
/// Field names and string values are UTF-8 text. A value that was not a JSON string in the
/// stored object (a number, `true`, an array, a nested object...) is kept as its exact JSON
/// text and written back unchanged, so a hash written by another program survives a
/// read-modify-write through Brain.
public struct HashDocument: Sendable, Equatable {
    /// One field's value.
    public enum Value: Sendable, Hashable {
        /// A string, as its UTF-8 bytes (escapes decoded).
        case string([UInt8])
        /// Any other JSON value, as its exact text in the stored object.
        case json([UInt8])
    }

    /// Bounds on the JSON ``init(json:limits:)`` accepts, checked as it is read.
    public struct Limits: Sendable, Equatable {
        /// The deepest nesting of arrays and objects inside a field's value.
        public var maxDepth: Int
        /// The most bytes of JSON text.
        public var maxBytes: Int

        /// Limits of `maxDepth` nesting levels and `maxBytes` bytes.
        public init(maxDepth: Int, maxBytes: Int) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
        }

        /// 64 levels of nesting and 64 MiB of text.
        public static let `default` = Limits(maxDepth: 64, maxBytes: 64 << 20)
    }

    private var names: [[UInt8]] = []
    private var values: [Value] = []
    private var positions: [[UInt8]: Int] = [:]

    /// An empty hash.
    public init() {}

    /// The hash stored as the JSON object `json`.
    ///
    /// Whitespace around tokens is allowed; nothing may follow the object. When a field
    /// appears twice, the last value wins and the field keeps its first position.
    ///
    /// - Throws: ``EngineError`` with code ``EngineError/Code/invalidHash`` when `json` is not
    ///   one JSON object, is beyond `limits`, or has a field name or string that is not valid
    ///   UTF-8 (the message names the field).
    public init(json: [UInt8], limits: Limits = .default) throws(EngineError) {
        guard json.count <= limits.maxBytes else {
            throw EngineError(
                .invalidHash, "hash JSON of \(json.count) bytes is over the \(limits.maxBytes)-byte limit")
        }
        var parser = JSONParser(bytes: json, maxDepth: limits.maxDepth)
        try parser.parseObject { (name, value) throws(EngineError) in
            self.store(name, value)
        }
    }

    /// The number of fields.
    public var count: Int { names.count }

    /// True when the hash has no fields.
    public var isEmpty: Bool { names.isEmpty }

    /// The field names, in order.
    public var fields: [[UInt8]] { names }

    /// The fields and their values, in order.
    public var entries: [(field: [UInt8], value: Value)] {
        Array(zip(names, values))
    }

    /// The value of `field`, or nil when the hash does not have it.
    public subscript(field: [UInt8]) -> Value? {
        positions[field].map { values[$0] }
    }

    /// Sets `field` to the string `value`, at the end of the order when the field is new.
    ///
    /// - Returns: true when the field is new, false when it replaced a value.
    /// - Throws: ``EngineError`` ``EngineError/Code/invalidHash`` when the field name or the
    ///   value is not valid UTF-8; the hash is then unchanged.
    @discardableResult
    public mutating func set(field: [UInt8], value: [UInt8]) throws(EngineError) -> Bool {
        guard UTF8Validation.isValid(field[...]) else {
            throw EngineError(.invalidHash, "field \(HashDocument.describe(field)) is not valid UTF-8")
        }
        guard UTF8Validation.isValid(value[...]) else {
            throw EngineError(.invalidHash, "value of field \(HashDocument.describe(field)) is not valid UTF-8")
        }
        return store(field, .string(value))
    }

    /// Removes each of `fields` that the hash has, keeping the others in order.
    ///
    /// - Returns: how many fields were removed.
    @discardableResult
    public mutating func remove(fields: [[UInt8]]) -> Int {
        let doomed = Set(fields.filter { positions[$0] != nil })
        guard !doomed.isEmpty else { return 0 }
        var keptNames: [[UInt8]] = []
        var keptValues: [Value] = []
        keptNames.reserveCapacity(names.count - doomed.count)
        keptValues.reserveCapacity(names.count - doomed.count)
        for (name, value) in zip(names, values) where !doomed.contains(name) {
            keptNames.append(name)
            keptValues.append(value)
        }
        names = keptNames
        values = keptValues
        positions = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        return doomed.count
    }

    /// A hash of the named fields that this one has, in the order they are named (each once):
    /// what `hget key f1 f2` returns.
    public func subset(fields: [[UInt8]]) -> HashDocument {
        var result = HashDocument()
        for field in fields {
            if let position = positions[field], result.positions[field] == nil {
                result.store(field, values[position])
            }
        }
        return result
    }

    /// The hash as a compact JSON object, fields in order: strings escaped as JSON requires
    /// (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\u00XX` for other control characters),
    /// non-ASCII UTF-8 written as is, other values written as their stored text.
    public func json() -> [UInt8] {
        var out: [UInt8] = []
        var size = 2
        for (name, value) in zip(names, values) {
            switch value {
            case .string(let bytes), .json(let bytes): size += name.count + bytes.count + 6
            }
        }
        out.reserveCapacity(size)
        out.append(UInt8(ascii: "{"))
        for (index, (name, value)) in zip(names, values).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            HashDocument.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let bytes): HashDocument.appendString(bytes, to: &out)
            case .json(let text): out.append(contentsOf: text)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    // MARK: Internals

    @discardableResult
    private mutating func store(_ name: [UInt8], _ value: Value) -> Bool {
        if let position = positions[name] {
            values[position] = value
            return false
        }
        positions[name] = names.count
        names.append(name)
        values.append(value)
        return true
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A field name for an error message: its text when it is UTF-8, with invalid bytes as
    /// `\xHH`, quoted.
    static func describe(_ field: [UInt8]) -> String {
        var text = "\""
        var index = 0
        while index < field.count {
            let length = UTF8Validation.sequenceLength(field[...], at: index)
            if length > 0 {
                text += String(decoding: field[index..<index + length], as: UTF8.self)
                index += length
            } else {
                text += "\\x" + (field[index] < 16 ? "0" : "") + String(field[index], radix: 16, uppercase: true)
                index += 1
            }
        }
        return text + "\""
    }
}

/// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
enum UTF8Validation {
    static func isValid(_ bytes: ArraySlice<UInt8>) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            let length = sequenceLength(bytes, at: index)
            if length == 0 { return false }
            index += length
        }
        return true
    }

    /// The length of the valid UTF-8 sequence starting at `index`, or 0 when it is invalid.
    static func sequenceLength(_ bytes: ArraySlice<UInt8>, at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return 0
        }
        guard bytes.endIndex - index >= length else { return 0 }
        let second = bytes[index + 1]
        guard second >= lower && second <= upper else { return 0 }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 {
            return 0
        }
        return length
    }
}

/// Reads one JSON object (RFC 8259) whose fields become a hash.
private struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var position = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func fail(_ message: String) -> EngineError {
        EngineError(.invalidHash, "\(message) at byte \(position)")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(EngineError) {
        guard position < bytes.count, bytes[position] == byte else {
            throw fail(position < bytes.count ? "expected \(what)" : "JSON ends where \(what) was expected")
        }
        position += 1
    }

    private func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    /// Parses the top-level object, handing each field to `field` as it is read.
    mutating func parseObject(
        _ field: (_ name: [UInt8], _ value: HashDocument.Value) throws(EngineError) -> Void
    ) throws(EngineError) {
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else {
            throw fail(peek() == nil ? "hash JSON is empty" : "hash JSON is not an object")
        }
        position += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a field name") }
                let name = try string(field: nil)
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                skipWhitespace()
                let value: HashDocument.Value
                if peek() == UInt8(ascii: "\"") {
                    value = .string(try string(field: name))
                } else {
                    let start = position
                    try skipValue(depth: 1, field: name)
                    value = .json(Array(bytes[start..<position]))
                }
                try field(name, value)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                break
            }
        }
        skipWhitespace()
        guard position == bytes.count else { throw fail("bytes follow the hash's JSON object") }
    }

    /// Reads a string at the opening quote and returns its decoded UTF-8 bytes. `field` is
    /// the field whose value it is (nil for a field name), for error messages.
    private mutating func string(field: [UInt8]?) throws(EngineError) -> [UInt8] {
        let start = position
        position += 1
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else {
                position = start
                throw fail("unterminated string")
            }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard UTF8Validation.isValid(out[...]) else {
                    if let field {
                        throw EngineError(
                            .invalidHash, "value of field \(HashDocument.describe(field)) is not valid UTF-8")
                    }
                    throw EngineError(.invalidHash, "field \(HashDocument.describe(out)) is not valid UTF-8")
                }
                return out
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0..<0x20:
                throw fail("control character in a string")
            default:
                out.append(byte)
                position += 1
            }
        }
    }

    private mutating func escape(into out: inout [UInt8]) throws(EngineError) {
        position += 1
        guard let byte = peek() else { throw fail("JSON ends inside an escape") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(byte)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { throw fail("unpaired surrogate escape") }
                position += 2
                let low = try hex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw fail("unpaired surrogate escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw fail("unpaired surrogate escape")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
            out.append(contentsOf: String(Character(unicode)).utf8)
        default:
            throw fail("invalid escape")
        }
    }

    private mutating func hex4() throws(EngineError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw fail("JSON ends inside a \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Checks one JSON value of any kind and moves past it.
    private mutating func skipValue(depth: Int, field: [UInt8]) throws(EngineError) {
        guard let byte = peek() else { throw fail("JSON ends where a value was expected") }
        switch byte {
        case UInt8(ascii: "\""):
            _ = try string(field: field)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth <= maxDepth else {
                throw fail("value of field \(HashDocument.describe(field)) nests deeper than \(maxDepth) levels")
            }
            let isObject = byte == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            position += 1
            skipWhitespace()
            if peek() == close {
                position += 1
                return
            }
            while true {
                skipWhitespace()
                if isObject {
                    guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                    _ = try string(field: field)
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"), "':'")
                    skipWhitespace()
                }
                try skipValue(depth: depth + 1, field: field)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                try expect(close, isObject ? "',' or '}'" : "',' or ']'")
                return
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
        default:
            throw fail("invalid JSON value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(EngineError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw fail("invalid JSON value") }
        let matches = word.withUTF8Buffer { expected in
            expected.elementsEqual(bytes[position..<position + count])
        }
        guard matches else { throw fail("invalid JSON value") }
        position += count
    }

    private mutating func number() throws(EngineError) {
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else {
            throw fail("invalid number")
        }
        position += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard try digitsFollow() else { throw fail("invalid number") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard try digitsFollow() else { throw fail("invalid number") }
        }
    }

    private mutating func skipDigits() {
        while let byte = peek(), byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { position += 1 }
    }

    private mutating func digitsFollow() throws(EngineError) -> Bool {
        let start = position
        skipDigits()
        return position > start
    }
}
