/// Erlang's External Term Format: what `term_to_binary/1` writes and `binary_to_term/1` reads,
/// and what the distribution protocol carries.
///
/// Encoding writes the forms OTP 25+ writes with `{minor_version, 2}`: UTF-8 atoms,
/// `NEW_FLOAT_EXT`, `NEW_PID_EXT`, `NEWER_REFERENCE_EXT`, and the smallest integer form. Its
/// output is byte-for-byte what `term_to_binary(T, [{minor_version, 2}])` gives for any term
/// that came from Erlang in that form, small maps included (large maps, over 32 keys, are
/// written in key order where Erlang uses its hash order; both decode to the same map).
///
/// Decoding accepts every tag listed in `reference/erlang-distribution.md`, the old forms
/// included, and compressed terms (tag 80). It never traps on malformed input: every problem
/// is a ``TermError`` naming the offset, and ``TermLimits`` bound the work and memory.
public enum ExternalTermFormat {
    /// The version byte every encoded term starts with.
    public static let versionByte: UInt8 = 131

    // MARK: Encoding

    /// The encoding of `term`, starting with the version byte 131.
    ///
    /// Values Erlang cannot represent are written in the nearest form Erlang reads back: an
    /// atom name beyond 255 characters is cut to its first 255, and a `STRING_EXT` string beyond
    /// 65535 bytes is written as a list of integers, as Erlang does. A non-finite float is
    /// written as its bits, which Erlang (and ``decode(_:limits:)``) rejects.
    public static func encode(_ term: Term) -> [UInt8] {
        var out: [UInt8] = []
        encode(term, into: &out)
        return out
    }

    /// Appends the encoding of `term`, version byte first, to `buffer`: for framing several
    /// terms in one message without copying.
    public static func encode(_ term: Term, into buffer: inout [UInt8]) {
        buffer.append(versionByte)
        TermEncoder.encode(term, into: &buffer)
    }

    // MARK: Decoding

    /// Decodes `bytes` as exactly one term: the version byte, the term, and nothing after it.
    ///
    /// - Throws: ``TermError`` for a missing version byte, a malformed or truncated term,
    ///   trailing bytes, or a term beyond `limits`.
    public static func decode(_ bytes: [UInt8], limits: TermLimits = .default) throws(TermError) -> Term {
        let (term, consumed) = try decodePrefix(bytes, at: 0, limits: limits)
        if consumed != bytes.count {
            throw TermError(.trailingBytes, at: consumed, "\(bytes.count - consumed) bytes follow the term")
        }
        return term
    }

    /// Decodes the term that starts at `offset` of `bytes` (at its version byte) and returns it
    /// with the number of bytes it took, leaving whatever follows for the caller: a
    /// distribution message is a control term followed by a message term.
    ///
    /// Error offsets count from the start of `bytes`.
    public static func decodePrefix(
        _ bytes: [UInt8], at offset: Int = 0, limits: TermLimits = .default
    ) throws(TermError) -> (term: Term, consumed: Int) {
        guard offset >= 0 && offset <= bytes.count else {
            throw TermError(.truncated, at: offset, "offset \(offset) is outside the \(bytes.count) bytes")
        }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(TermError) in
            try decodePrefix(buffer, at: offset, limits: limits)
        }
    }

    /// Decodes the term at the start of `buffer` (at its version byte) and returns it with the
    /// number of bytes it took; for callers holding bytes they do not own as an array, such
    /// as a NIO `ByteBuffer`'s readable bytes.
    ///
    /// Error offsets count from the start of `buffer`.
    public static func decodePrefix(
        _ buffer: UnsafeRawBufferPointer, limits: TermLimits = .default
    ) throws(TermError) -> (term: Term, consumed: Int) {
        try decodePrefix(buffer.assumingMemoryBound(to: UInt8.self), at: 0, limits: limits)
    }

    static func decodePrefix(
        _ buffer: UnsafeBufferPointer<UInt8>, at offset: Int, limits: TermLimits
    ) throws(TermError) -> (term: Term, consumed: Int) {
        guard offset < buffer.count else {
            throw TermError(.truncated, at: offset, "no bytes where a term should start")
        }
        guard buffer[offset] == versionByte else {
            throw TermError(.badVersion, at: offset, "version byte is \(buffer[offset]), not 131")
        }
        let start = offset + 1
        if start < buffer.count && buffer[start] == TermTag.compressed {
            return try decodeCompressed(buffer, at: start, limits: limits)
        }
        var decoder = TermDecoder(bytes: buffer, start: start, limits: limits)
        let term = try decoder.decodeTerm()
        return (term, decoder.position - offset)
    }

    /// Decodes `80, UncompressedSize:32, ZlibData` at `tagOffset`: the size is checked against
    /// the limit before anything is inflated, and inflating stops at that size.
    private static func decodeCompressed(
        _ buffer: UnsafeBufferPointer<UInt8>, at tagOffset: Int, limits: TermLimits
    ) throws(TermError) -> (term: Term, consumed: Int) {
        guard buffer.count - tagOffset >= 5 else {
            throw TermError(.truncated, at: tagOffset, "compressed term needs a 4-byte size")
        }
        var size = 0
        for index in tagOffset + 1...tagOffset + 4 { size = size << 8 | Int(buffer[index]) }
        guard size <= limits.maxBytes else {
            throw TermError(
                .sizeLimit, at: tagOffset,
                "compressed term declares \(size) bytes uncompressed, over the \(limits.maxBytes)-byte limit")
        }
        let (inflated, end) = try Inflater.inflate(buffer, from: tagOffset + 5, expectedSize: size, baseOffset: 0)
        let term = try inflated.withUnsafeBufferPointer { (data) throws(TermError) -> Term in
            var decoder = TermDecoder(bytes: data, start: 0, limits: limits)
            let term: Term
            do throws(TermError) {
                term = try decoder.decodeTerm()
            } catch {
                throw TermError(error.code, at: error.offset, "in the uncompressed data: \(error.message)")
            }
            if decoder.position != data.count {
                throw TermError(
                    .trailingBytes, at: decoder.position,
                    "in the uncompressed data: \(data.count - decoder.position) bytes follow the term")
            }
            return term
        }
        return (term, end - (tagOffset - 1))
    }
}

/// Writes term bodies (no version byte).
enum TermEncoder {
    static func encode(_ term: Term, into out: inout [UInt8]) {
        switch term {
        case .integer(let value):
            encodeInteger(value, into: &out)
        case .bigInteger(let value):
            if let small = value.int64Value {
                encodeInteger(small, into: &out)
            } else {
                encodeBig(isNegative: value.isNegative, magnitude: value.magnitude, into: &out)
            }
        case .float(let value):
            out.append(TermTag.newFloat)
            appendU64(value.bitPattern, to: &out)
        case .atom(let atom):
            encodeAtom(atom, into: &out)
        case .tuple(let elements):
            if elements.count <= 255 {
                out.append(TermTag.smallTuple)
                out.append(UInt8(elements.count))
            } else {
                out.append(TermTag.largeTuple)
                appendU32(UInt32(elements.count), to: &out)
            }
            for element in elements { encode(element, into: &out) }
        case .emptyList:
            out.append(TermTag.nilList)
        case .list(let elements, let tail):
            out.append(TermTag.list)
            appendU32(UInt32(elements.count), to: &out)
            for element in elements { encode(element, into: &out) }
            encode(tail, into: &out)
        case .string(let bytes):
            if bytes.count <= Int(UInt16.max) {
                out.append(TermTag.string)
                appendU16(UInt16(bytes.count), to: &out)
                out.append(contentsOf: bytes)
            } else {
                out.append(TermTag.list)
                appendU32(UInt32(bytes.count), to: &out)
                for byte in bytes {
                    out.append(TermTag.smallInteger)
                    out.append(byte)
                }
                out.append(TermTag.nilList)
            }
        case .binary(let bytes):
            out.append(TermTag.binary)
            appendU32(UInt32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        case .bitBinary(let bytes, let bits):
            encodeBitBinary(bytes, bits: bits, into: &out)
        case .map(let pairs):
            out.append(TermTag.map)
            appendU32(UInt32(pairs.count), to: &out)
            // Key order makes the output deterministic and equal to Erlang's for small maps.
            for (key, value) in Term.sortedPairs(pairs) {
                encode(key, into: &out)
                encode(value, into: &out)
            }
        case .pid(let pid):
            out.append(TermTag.newPid)
            encodeAtom(pid.node, into: &out)
            appendU32(pid.id, to: &out)
            appendU32(pid.serial, to: &out)
            appendU32(pid.creation, to: &out)
        case .reference(let reference):
            out.append(TermTag.newerReference)
            // The count field is 16 bits; Erlang's references have at most 5 words.
            let words = reference.ids.prefix(Int(UInt16.max))
            appendU16(UInt16(words.count), to: &out)
            encodeAtom(reference.node, into: &out)
            appendU32(reference.creation, to: &out)
            for word in words { appendU32(word, to: &out) }
        case .port(let port):
            out.append(port.id > UInt64(UInt32.max) ? TermTag.v4Port : TermTag.newPort)
            encodeAtom(port.node, into: &out)
            if port.id > UInt64(UInt32.max) {
                appendU64(port.id, to: &out)
            } else {
                appendU32(UInt32(port.id), to: &out)
            }
            appendU32(port.creation, to: &out)
        case .export(let module, let function, let arity):
            out.append(TermTag.export)
            encodeAtom(module, into: &out)
            encodeAtom(function, into: &out)
            out.append(TermTag.smallInteger)
            out.append(arity)
        case .fun(let fun):
            out.append(contentsOf: fun.encoded)
        }
    }

    private static func encodeInteger(_ value: Int64, into out: inout [UInt8]) {
        if value >= 0 && value <= 255 {
            out.append(TermTag.smallInteger)
            out.append(UInt8(value))
        } else if value >= Int64(Int32.min) && value <= Int64(Int32.max) {
            out.append(TermTag.integer)
            appendU32(UInt32(bitPattern: Int32(value)), to: &out)
        } else {
            var magnitude: [UInt8] = []
            var rest = value.magnitude
            while rest != 0 {
                magnitude.append(UInt8(truncatingIfNeeded: rest))
                rest >>= 8
            }
            encodeBig(isNegative: value < 0, magnitude: magnitude, into: &out)
        }
    }

    private static func encodeBig(isNegative: Bool, magnitude: [UInt8], into out: inout [UInt8]) {
        if magnitude.count <= 255 {
            out.append(TermTag.smallBig)
            out.append(UInt8(magnitude.count))
        } else {
            out.append(TermTag.largeBig)
            appendU32(UInt32(magnitude.count), to: &out)
        }
        out.append(isNegative ? 1 : 0)
        out.append(contentsOf: magnitude)
    }

    private static func encodeBitBinary(_ bytes: [UInt8], bits: UInt8, into out: inout [UInt8]) {
        guard !bytes.isEmpty, bits >= 1 && bits <= 7 else {
            // No partial last byte: an ordinary binary.
            out.append(TermTag.binary)
            appendU32(UInt32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
            return
        }
        out.append(TermTag.bitBinary)
        appendU32(UInt32(bytes.count), to: &out)
        out.append(bits)
        out.append(contentsOf: bytes.dropLast())
        out.append(bytes[bytes.count - 1] & UInt8(truncatingIfNeeded: 0xFF << (8 - Int(bits))))
    }

    static func encodeAtom(_ atom: Atom, into out: inout [UInt8]) {
        let utf8 = atom.name.utf8
        if utf8.count <= 255 {
            out.append(TermTag.smallAtomUTF8)
            out.append(UInt8(utf8.count))
            out.append(contentsOf: utf8)
            return
        }
        // Over 255 bytes: within 255 characters it is a valid ATOM_UTF8_EXT; beyond, only its
        // first 255 characters are written.
        var name = atom.name
        if name.unicodeScalars.count > Atom.maximumLength {
            var cut = ""
            cut.unicodeScalars.append(contentsOf: name.unicodeScalars.prefix(Atom.maximumLength))
            name = cut
        }
        out.append(TermTag.atomUTF8)
        appendU16(UInt16(name.utf8.count), to: &out)
        out.append(contentsOf: name.utf8)
    }

    private static func appendU16(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }

    private static func appendU32(_ value: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }

    private static func appendU64(_ value: UInt64, to out: inout [UInt8]) {
        appendU32(UInt32(value >> 32), to: &out)
        appendU32(UInt32(truncatingIfNeeded: value), to: &out)
    }
}
