/// One change in the append-only log: the latest value of a key, or its delete.
///
/// Format, integers big-endian:
/// `[length: 4][crc32: 4][lsn: 8][type: 1][op: 1][encoding: 1][key length: 2][key][value]`,
/// where `length` counts every byte after itself and the CRC-32 (IEEE) covers every byte after
/// itself. `op` is 0 for a set, 1 for a delete (no value).
public struct LogRecord: Sendable, Equatable {
    /// The log sequence number: grows with every change the node makes.
    public var lsn: UInt64
    public var type: EntryType
    public var key: [UInt8]
    /// The value, or `nil` for a delete.
    public var value: [UInt8]?
    public var encoding: ValueEncoding

    public init(lsn: UInt64, type: EntryType, key: [UInt8], value: [UInt8]?, encoding: ValueEncoding = .bytes) {
        self.lsn = lsn
        self.type = type
        self.key = key
        self.value = value
        self.encoding = encoding
    }

    static let headerSize = 4 + 4 + 8 + 1 + 1 + 1 + 2
    /// The largest record accepted on reading: a 250-byte key and a 64 MiB value, with room.
    static let maximumLength = 64 << 20

    /// Appends the record's bytes to `out`.
    public func encode(into out: inout [UInt8]) {
        let start = out.count
        let length = LogRecord.headerSize - 4 + key.count + (value?.count ?? 0)
        LogRecord.append32(UInt32(length), to: &out)
        LogRecord.append32(0, to: &out)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: lsn >> UInt64(shift))) }
        out.append(type.rawValue)
        out.append(value == nil ? 1 : 0)
        out.append(encoding.rawValue)
        out.append(UInt8(key.count >> 8))
        out.append(UInt8(key.count & 0xFF))
        out += key
        if let value { out += value }
        let crc = out.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 8)...])) }
        out[start + 4] = UInt8(crc >> 24)
        out[start + 5] = UInt8(crc >> 16 & 0xFF)
        out[start + 6] = UInt8(crc >> 8 & 0xFF)
        out[start + 7] = UInt8(crc & 0xFF)
    }

    /// The outcome of reading one record from a byte offset.
    public enum Decoded: Equatable {
        case record(LogRecord, next: Int)
        /// The bytes end inside a record: a torn write at the end of a log.
        case truncated
        /// The record is damaged: bad checksum, impossible length or field.
        case damaged(String)
    }

    /// Reads the record starting at `offset`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Decoded {
        guard bytes.count - offset >= 4 else { return .truncated }
        let length = Int(read32(bytes, offset))
        guard length >= headerSize - 4, length <= maximumLength else {
            return .damaged("impossible record length \(length)")
        }
        guard bytes.count - offset - 4 >= length else { return .truncated }
        let end = offset + 4 + length
        let stored = read32(bytes, offset + 4)
        let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<end]))
        guard stored == computed else { return .damaged("checksum mismatch") }
        var lsn: UInt64 = 0
        for index in 0..<8 { lsn = lsn << 8 | UInt64(bytes[offset + 8 + index]) }
        guard let type = EntryType(rawValue: bytes[offset + 16]), type.isPersisted,
            let encoding = ValueEncoding(rawValue: bytes[offset + 18]), bytes[offset + 17] <= 1
        else {
            return .damaged("unknown type, operation or encoding")
        }
        let keyLength = Int(bytes[offset + 19]) << 8 | Int(bytes[offset + 20])
        let keyStart = offset + headerSize
        guard keyStart + keyLength <= end else { return .damaged("key longer than its record") }
        let key = Array(bytes[keyStart..<(keyStart + keyLength)])
        let value = bytes[offset + 17] == 1 ? nil : Array(bytes[(keyStart + keyLength)..<end])
        return .record(LogRecord(lsn: lsn, type: type, key: key, value: value, encoding: encoding), next: end)
    }

    static func append32(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func read32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }
}

/// CRC-32 (IEEE 802.3, the polynomial of zlib and Ethernet).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        return crc
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
