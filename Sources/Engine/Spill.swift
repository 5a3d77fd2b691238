#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One dirty entry saved to a spill file.
public struct SpillRecord: Sendable, Equatable {
    public var type: EntryType
    public var key: [UInt8]
    /// The value, or `nil` for a delete that was not yet written back.
    public var value: [UInt8]?
    public var encoding: ValueEncoding

    public init(type: EntryType, key: [UInt8], value: [UInt8]?, encoding: ValueEncoding = .bytes) {
        self.type = type
        self.key = key
        self.value = value
        self.encoding = encoding
    }
}

/// The spill file: what graceful shutdown writes when the backend stays unreachable, and the
/// next start writes back first.
///
/// Format: the 8-byte magic `BRSPILL1`, then records of
/// `[type: 1][encoding: 1][is delete: 1][key length: 4][value length: 4][key][value][FNV-1a 32
/// of everything before it in the record: 4]`, integers big-endian. A file that does not end
/// exactly after a whole record is damaged and is refused with a message.
public enum SpillFile {
    static let magic: [UInt8] = Array("BRSPILL1".utf8)

    /// The bytes of a spill file holding `records`.
    public static func encode(_ records: [SpillRecord]) -> [UInt8] {
        var out = magic
        for record in records {
            var body: [UInt8] = [record.type.rawValue, record.encoding.rawValue, record.value == nil ? 1 : 0]
            append32(UInt32(record.key.count), to: &body)
            append32(UInt32(record.value?.count ?? 0), to: &body)
            body += record.key
            body += record.value ?? []
            append32(fnv1a(body), to: &body)
            out += body
        }
        return out
    }

    /// The records of a spill file's bytes; throws a message naming the offset of the damage.
    public static func decode(_ bytes: [UInt8]) throws(SpillError) -> [SpillRecord] {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw SpillError("not a Brain spill file (bad magic)")
        }
        var records: [SpillRecord] = []
        var offset = magic.count
        while offset < bytes.count {
            guard bytes.count - offset >= 11 else { throw SpillError("truncated record at byte \(offset)") }
            let keyLength = Int(read32(bytes, offset + 3))
            let valueLength = Int(read32(bytes, offset + 7))
            let end = offset + 11 + keyLength + valueLength
            guard end + 4 <= bytes.count, end > offset else { throw SpillError("truncated record at byte \(offset)") }
            guard fnv1a(bytes[offset..<end]) == read32(bytes, end) else {
                throw SpillError("checksum mismatch in the record at byte \(offset)")
            }
            guard let type = EntryType(rawValue: bytes[offset]), let encoding = ValueEncoding(rawValue: bytes[offset + 1]) else {
                throw SpillError("unknown type in the record at byte \(offset)")
            }
            let key = Array(bytes[(offset + 11)..<(offset + 11 + keyLength)])
            let value = bytes[offset + 2] == 1 ? nil : Array(bytes[(offset + 11 + keyLength)..<end])
            records.append(SpillRecord(type: type, key: key, value: value, encoding: encoding))
            offset = end + 4
        }
        return records
    }

    /// Writes `records` to `path` durably: a temporary file, fsync, rename, fsync of the
    /// directory.
    public static func write(_ records: [SpillRecord], to path: String) throws(SpillError) {
        let bytes = encode(records)
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw SpillError("cannot create \(temporary): \(errnoText())") }
        guard PosixFile.writeAll(fd, bytes) else {
            let text = errnoText()
            close(fd)
            throw SpillError("cannot write \(temporary): \(text)")
        }
        guard fsync(fd) == 0 else {
            let text = errnoText()
            close(fd)
            throw SpillError("cannot fsync \(temporary): \(text)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SpillError("cannot rename \(temporary) to \(path): \(errnoText())") }
        PosixFile.syncDirectory(path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
    }

    /// Reads the records of the spill file at `path`.
    public static func read(from path: String) throws(SpillError) -> [SpillRecord] {
        let bytes: [UInt8]
        switch PosixFile.read(path) {
        case .success(let read): bytes = read
        case .failure(let error): throw SpillError(error.message)
        }
        do {
            return try decode(bytes)
        } catch {
            throw SpillError("\(path): \(error.message)")
        }
    }

    private static func append32(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func read32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    static func fnv1a<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    private static func errnoText() -> String { PosixFile.errnoText() }
}

/// A spill file could not be written or read.
public struct SpillError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension CacheStore {
    /// Every dirty persisted entry, for a spill file.
    public func dirtySnapshot() -> [SpillRecord] {
        var records: [SpillRecord] = []
        for shard in shards {
            shard.state.withLock { state in
                for id in state.meta.indices {
                    let entry = state.meta[packed: id]
                    guard entry.hash != 0, entry.state == .dirty, entry.type.isPersisted else { continue }
                    let tombstone = entry.flags.contains(.tombstone)
                    records.append(SpillRecord(
                        type: entry.type, key: state.key(of: UInt32(id)),
                        value: tombstone ? nil : state.value(of: UInt32(id)),
                        encoding: entry.flags.contains(.erlangString) ? .erlangString : .bytes))
                }
            }
        }
        return records
    }

    /// Applies spilled entries as dirty changes, to be written back. The backend is not read:
    /// a spilled value is newer than anything it holds.
    public func restore(_ records: [SpillRecord]) throws(EngineError) {
        try restore(records.map { ($0, nil) })
    }

    /// Applies the latest log records found at start-up, as dirty changes to write back.
    /// They keep their lsns: the log already holds them.
    public func replay(_ records: [LogRecord]) throws(EngineError) {
        try restore(records.map {
            (SpillRecord(type: $0.type, key: $0.key, value: $0.value, encoding: $0.encoding), $0.lsn)
        })
    }

    private func restore(_ records: [(SpillRecord, UInt64?)]) throws(EngineError) {
        let now = clock.nowMilliseconds()
        for (record, lsn) in records {
            let namespace = Namespace(record.type)
            let hash = Self.hash(namespace, record.key)
            let shard = shards[Int(hash >> 40) % shards.count]
            let result = shard.state.withLock { state -> Result<Void, EngineError> in
                record.key.withUnsafeBytes { keyBytes -> Result<Void, EngineError> in
                    do throws(EngineError) {
                        let id: UInt32
                        let prepared = record.value.map { PreparedValue($0) }
                        if let existing = state.lookup(namespace, keyBytes, hash: hash) {
                            id = existing
                            try state.replaceValue(id, prepared)
                        } else {
                            id = try state.insert(
                                namespace: namespace, type: record.type, key: keyBytes, hash: hash,
                                value: prepared, state: .absent, now: now)
                        }
                        var entry = state.meta[Int(id)]
                        entry.type = record.type
                        // The backend's state is unknown: assume it holds an object of this
                        // type, so that a spilled delete reaches it.
                        entry.backendType = record.type.rawValue
                        if record.value == nil {
                            entry.flags.insert(.tombstone)
                        } else if record.encoding == .erlangString {
                            entry.flags.insert(.erlangString)
                        }
                        state.meta[Int(id)] = entry
                        state.markDirty(id, now: now, oldDirtyBytes: 0, replayedLSN: lsn)
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
            }
            try result.get()
        }
    }
}
