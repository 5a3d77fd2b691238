/// External Term Format tags (erts/doc/guides/erl_ext_dist.md).
enum TermTag {
    static let version: UInt8 = 131
    static let compressed: UInt8 = 80
    static let newFloat: UInt8 = 70
    static let bitBinary: UInt8 = 77
    static let newPid: UInt8 = 88
    static let newPort: UInt8 = 89
    static let newerReference: UInt8 = 90
    static let smallInteger: UInt8 = 97
    static let integer: UInt8 = 98
    static let float: UInt8 = 99
    static let atom: UInt8 = 100
    static let reference: UInt8 = 101
    static let port: UInt8 = 102
    static let pid: UInt8 = 103
    static let smallTuple: UInt8 = 104
    static let largeTuple: UInt8 = 105
    static let nilList: UInt8 = 106
    static let string: UInt8 = 107
    static let list: UInt8 = 108
    static let binary: UInt8 = 109
    static let smallBig: UInt8 = 110
    static let largeBig: UInt8 = 111
    static let newFun: UInt8 = 112
    static let export: UInt8 = 113
    static let newReference: UInt8 = 114
    static let smallAtom: UInt8 = 115
    static let map: UInt8 = 116
    static let atomUTF8: UInt8 = 118
    static let smallAtomUTF8: UInt8 = 119
    static let v4Port: UInt8 = 120
}

/// Decodes one term body (no version byte) from a buffer, iteratively.
///
/// Containers are tracked on an explicit stack of frames whose elements wait on a shared value
/// stack, so nesting depth costs heap memory bounded by ``TermLimits/maxDepth``, never native
/// stack. Every declared count or length is compared with the bytes that remain (each element
/// takes at least one byte) and with the limits before anything is reserved for it.
struct TermDecoder {
    private let bytes: UnsafeBufferPointer<UInt8>
    /// The next byte to read.
    private(set) var position: Int
    /// Reads stop here: the end of the input, or earlier when ``TermLimits/maxBytes`` ends first.
    private let end: Int
    /// True when `end` is the size limit rather than the end of the input.
    private let endIsLimit: Bool
    /// Added to positions in error offsets, so they count from the caller's start of input.
    private let baseOffset: Int
    private let limits: TermLimits
    private var elementCount = 0

    private struct FunHeader {
        var start: Int
        var end: Int
        var module: Atom
        var arity: UInt8
        var index: UInt32
        var freeVariableCount: UInt32
        var oldIndex: Int64
        var oldUniq: Int64
        var pid: Pid
    }

    private enum FrameKind {
        case tuple
        /// A list's elements and then its tail.
        case list
        case map
        /// A fun's free variables: decoded to check them, then dropped (the fun keeps its bytes).
        case fun(FunHeader)
    }

    private struct Frame {
        var kind: FrameKind
        /// Where the container's terms start in the value stack.
        var base: Int
        /// Terms still to decode for this container.
        var remaining: Int
        /// The offset of the container's tag, for error messages.
        var offset: Int
    }

    /// A decoder reading `bytes` from `start`; errors count offsets from `baseOffset`.
    init(bytes: UnsafeBufferPointer<UInt8>, start: Int, limits: TermLimits, baseOffset: Int = 0) {
        self.bytes = bytes
        self.position = start
        let available = bytes.count - start
        if available > limits.maxBytes {
            end = start + max(limits.maxBytes, 0)
            endIsLimit = true
        } else {
            end = bytes.count
            endIsLimit = false
        }
        self.baseOffset = baseOffset
        self.limits = limits
    }

    // MARK: Errors

    private func fail(_ code: TermError.Code, at offset: Int, _ message: String) -> TermError {
        TermError(code, at: baseOffset + offset, message)
    }

    /// The error for needing `count` bytes at the current position when fewer remain.
    private func shortage(_ count: Int, _ what: String) -> TermError {
        let remaining = end - position
        if endIsLimit {
            return fail(
                .sizeLimit, at: position,
                "\(what) needs \(count) bytes, which would exceed the \(limits.maxBytes)-byte term limit")
        }
        return fail(.truncated, at: position, "\(what) needs \(count) bytes, \(remaining) remain")
    }

    // MARK: Primitive reads

    private mutating func need(_ count: Int, _ what: @autoclosure () -> String) throws(TermError) {
        if count > end - position { throw shortage(count, what()) }
    }

    private mutating func u8(_ what: @autoclosure () -> String) throws(TermError) -> UInt8 {
        try need(1, what())
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func u16(_ what: @autoclosure () -> String) throws(TermError) -> UInt16 {
        try need(2, what())
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    private mutating func u32(_ what: @autoclosure () -> String) throws(TermError) -> UInt32 {
        try need(4, what())
        defer { position += 4 }
        var value: UInt32 = 0
        for index in position..<position + 4 { value = value << 8 | UInt32(bytes[index]) }
        return value
    }

    private mutating func u64(_ what: @autoclosure () -> String) throws(TermError) -> UInt64 {
        try need(8, what())
        defer { position += 8 }
        var value: UInt64 = 0
        for index in position..<position + 8 { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(TermError) -> [UInt8] {
        try need(count, what())
        defer { position += count }
        return Array(UnsafeBufferPointer(rebasing: bytes[position..<position + count]))
    }

    // MARK: Limits

    /// Checks that a container declaring `count` terms of at least `minimumBytes` each can fit
    /// in the remaining input and the element budget, before anything is reserved for it.
    private func checkDeclared(_ count: Int, minimumBytes: Int, _ what: String, at offset: Int) throws(TermError) {
        if count > (end - position) / minimumBytes {
            throw shortage(count * minimumBytes, "\(what) declaring \(count) elements")
        }
        if count > limits.maxElements - elementCount {
            throw fail(
                .elementLimit, at: offset,
                "\(what) declares \(count) elements, over the limit of \(limits.maxElements) in all")
        }
    }

    private mutating func countElement(at offset: Int) throws(TermError) {
        elementCount += 1
        if elementCount > limits.maxElements {
            throw fail(.elementLimit, at: offset, "more than \(limits.maxElements) elements")
        }
    }

    // MARK: Terms

    /// Decodes one complete term starting at the current position.
    mutating func decodeTerm() throws(TermError) -> Term {
        var frames: [Frame] = []
        var values: [Term] = []
        while true {
            let offset = position
            guard var value = try decodeStart(frames: &frames, values: values.count, at: offset) else {
                // A container was opened: its first element comes next. Room for a few
                // levels and a small tuple's elements, so that the stacks do not grow
                // element by element (a scalar term allocates nothing).
                if values.capacity == 0 { values.reserveCapacity(16) }
                continue
            }
            // Hand the finished value to the innermost open container, closing every container
            // it completes on the way out.
            while !frames.isEmpty {
                let last = frames.count - 1
                values.append(value)
                frames[last].remaining -= 1
                if frames[last].remaining > 0 { break }
                let frame = frames.removeLast()
                value = try close(frame, values: &values)
            }
            if frames.isEmpty { return value }
        }
    }

    /// Builds the term of a container whose terms are all on the value stack, and pops them.
    private mutating func close(_ frame: Frame, values: inout [Term]) throws(TermError) -> Term {
        defer { values.removeSubrange(frame.base...) }
        switch frame.kind {
        case .tuple:
            return .tuple(Array(values[frame.base...]))
        case .list:
            let tail = values[values.count - 1]
            let elements = Array(values[frame.base..<values.count - 1])
            // A LIST_EXT of no elements is just its tail, as in Erlang.
            return elements.isEmpty ? tail : .list(elements, tail: tail)
        case .map:
            let pairs = (values.count - frame.base) / 2
            var map = [Term: Term](minimumCapacity: pairs)
            var index = frame.base
            while index < values.count {
                if map.updateValue(values[index + 1], forKey: values[index]) != nil {
                    throw fail(
                        .duplicateMapKey, at: frame.offset,
                        "map holds the key \(values[index].printed) twice")
                }
                index += 2
            }
            return .map(map)
        case .fun(let header):
            return try finishFun(header)
        }
    }

    /// Opens a container that expects `count` more terms (at least one).
    private mutating func open(
        _ kind: FrameKind, count: Int, frames: inout [Frame], base: Int, at offset: Int
    ) throws(TermError) {
        if frames.count >= limits.maxDepth {
            throw fail(.depthLimit, at: offset, "terms nested deeper than \(limits.maxDepth) levels")
        }
        if frames.capacity == 0 { frames.reserveCapacity(4) }
        frames.append(Frame(kind: kind, base: base, remaining: count, offset: offset))
    }

    /// Reads one tag and either returns the finished scalar term, or opens a container on
    /// `frames` and returns nil.
    private mutating func decodeStart(
        frames: inout [Frame], values base: Int, at offset: Int
    ) throws(TermError) -> Term? {
        try countElement(at: offset)
        let tag = try u8("a term's tag")
        switch tag {
        case TermTag.smallInteger:
            return .integer(Int64(try u8("SMALL_INTEGER_EXT")))
        case TermTag.integer:
            return .integer(Int64(Int32(bitPattern: try u32("INTEGER_EXT"))))
        case TermTag.smallBig:
            let count = Int(try u8("SMALL_BIG_EXT length"))
            return try bigInteger(count: count, at: offset)
        case TermTag.largeBig:
            let count = Int(try u32("LARGE_BIG_EXT length"))
            return try bigInteger(count: count, at: offset)
        case TermTag.newFloat:
            let value = Double(bitPattern: try u64("NEW_FLOAT_EXT"))
            guard value.isFinite else {
                throw fail(.invalidFloat, at: offset, "float is not finite")
            }
            return .float(value)
        case TermTag.float:
            return .float(try oldFloat(at: offset))
        case TermTag.atomUTF8, TermTag.smallAtomUTF8, TermTag.atom, TermTag.smallAtom:
            return .atom(try atomBody(tag: tag, at: offset))
        case TermTag.smallTuple, TermTag.largeTuple:
            let count =
                tag == TermTag.smallTuple
                ? Int(try u8("SMALL_TUPLE_EXT arity")) : Int(try u32("LARGE_TUPLE_EXT arity"))
            if count == 0 { return .tuple([]) }
            try checkDeclared(count, minimumBytes: 1, "tuple", at: offset)
            try open(.tuple, count: count, frames: &frames, base: base, at: offset)
            return nil
        case TermTag.nilList:
            return .emptyList
        case TermTag.string:
            let count = Int(try u16("STRING_EXT length"))
            return .string(try take(count, "STRING_EXT of \(count) bytes"))
        case TermTag.list:
            let count = Int(try u32("LIST_EXT length"))
            try checkDeclared(count + 1, minimumBytes: 1, "list", at: offset)
            try open(.list, count: count + 1, frames: &frames, base: base, at: offset)
            return nil
        case TermTag.binary:
            let count = Int(try u32("BINARY_EXT length"))
            return .binary(try take(count, "BINARY_EXT of \(count) bytes"))
        case TermTag.bitBinary:
            return try bitBinary(at: offset)
        case TermTag.map:
            let count = Int(try u32("MAP_EXT arity"))
            if count == 0 { return .map([:]) }
            try checkDeclared(count * 2, minimumBytes: 1, "map", at: offset)
            try open(.map, count: count * 2, frames: &frames, base: base, at: offset)
            return nil
        case TermTag.newPid, TermTag.pid:
            return .pid(try pidBody(tag: tag, at: offset))
        case TermTag.newerReference, TermTag.newReference, TermTag.reference:
            return .reference(try referenceBody(tag: tag, at: offset))
        case TermTag.newPort, TermTag.v4Port, TermTag.port:
            return .port(try portBody(tag: tag, at: offset))
        case TermTag.export:
            let module = try atom("EXPORT_EXT module")
            let function = try atom("EXPORT_EXT function")
            let arityOffset = position
            guard try u8("EXPORT_EXT arity") == TermTag.smallInteger else {
                throw fail(.invalidValue, at: arityOffset, "EXPORT_EXT arity is not a SMALL_INTEGER_EXT")
            }
            return .export(module: module, function: function, arity: try u8("EXPORT_EXT arity"))
        case TermTag.newFun:
            let header = try funHeader(at: offset)
            if header.freeVariableCount == 0 { return try finishFun(header) }
            let count = Int(header.freeVariableCount)
            if count > header.end - position {
                throw fail(.invalidFun, at: offset, "fun declares \(count) free variables in fewer bytes")
            }
            try checkDeclared(count, minimumBytes: 1, "fun", at: offset)
            try open(.fun(header), count: count, frames: &frames, base: base, at: offset)
            return nil
        case TermTag.compressed:
            throw fail(.unknownTag, at: offset, "a compressed term may only follow the version byte")
        case 82:
            throw fail(.unknownTag, at: offset, "ATOM_CACHE_REF is not accepted (no atom cache is negotiated)")
        default:
            throw fail(.unknownTag, at: offset, "unknown tag \(tag)")
        }
    }

    private mutating func bigInteger(count: Int, at offset: Int) throws(TermError) -> Term {
        let sign = try u8("bignum sign")
        guard sign <= 1 else {
            throw fail(.invalidValue, at: position - 1, "bignum sign byte is \(sign), not 0 or 1")
        }
        let magnitude = try take(count, "bignum of \(count) bytes")
        return Term.normalizedInteger(BigInteger(isNegative: sign == 1, magnitude: magnitude))
    }

    private mutating func oldFloat(at offset: Int) throws(TermError) -> Double {
        let text = try take(31, "FLOAT_EXT")
        // The text is printf's "%.20e", padded with NUL bytes.
        let digits = text.prefix { $0 != 0 }
        guard digits.allSatisfy({ $0 < 0x80 }), let value = Double(String(decoding: digits, as: UTF8.self)),
            value.isFinite
        else {
            throw fail(.invalidFloat, at: offset, "FLOAT_EXT text is not a finite number")
        }
        return value
    }

    private mutating func bitBinary(at offset: Int) throws(TermError) -> Term {
        let count = Int(try u32("BIT_BINARY_EXT length"))
        let bits = try u8("BIT_BINARY_EXT bit count")
        if count == 0 {
            guard bits == 0 else {
                throw fail(.invalidValue, at: offset, "empty BIT_BINARY_EXT declares \(bits) bits")
            }
            return .binary([])
        }
        guard bits >= 1 && bits <= 8 else {
            throw fail(.invalidValue, at: offset, "BIT_BINARY_EXT declares \(bits) bits in its last byte")
        }
        var data = try take(count, "BIT_BINARY_EXT of \(count) bytes")
        if bits == 8 { return .binary(data) }
        // Erlang ignores the unused low bits; clearing them makes equal bitstrings equal.
        data[count - 1] &= UInt8(truncatingIfNeeded: 0xFF << (8 - Int(bits)))
        return .bitBinary(data, trailingBits: bits)
    }

    // MARK: Atoms

    /// Reads an atom where the format requires one (node names, modules, functions).
    private mutating func atom(_ what: String) throws(TermError) -> Atom {
        let offset = position
        let tag = try u8(what)
        switch tag {
        case TermTag.atomUTF8, TermTag.smallAtomUTF8, TermTag.atom, TermTag.smallAtom:
            return try atomBody(tag: tag, at: offset)
        default:
            throw fail(.invalidAtom, at: offset, "\(what) has tag \(tag), not an atom")
        }
    }

    private mutating func atomBody(tag: UInt8, at offset: Int) throws(TermError) -> Atom {
        let count: Int
        switch tag {
        case TermTag.smallAtomUTF8, TermTag.smallAtom: count = Int(try u8("atom length"))
        default: count = Int(try u16("atom length"))
        }
        try need(count, "atom of \(count) bytes")
        let raw = UnsafeBufferPointer(rebasing: bytes[position..<position + count])
        position += count
        let isUTF8 = tag == TermTag.atomUTF8 || tag == TermTag.smallAtomUTF8
        if raw.allSatisfy({ $0 < 0x80 }) {
            guard count <= Atom.maximumLength else {
                throw fail(.invalidAtom, at: offset, "atom of \(count) characters, over 255")
            }
            return Atom(String(decoding: raw, as: UTF8.self))
        }
        if !isUTF8 {
            guard count <= Atom.maximumLength else {
                throw fail(.invalidAtom, at: offset, "atom of \(count) characters, over 255")
            }
            var name = ""
            name.unicodeScalars.append(contentsOf: raw.map { Unicode.Scalar($0) })
            return Atom(name)
        }
        guard let name = String(validating: raw, as: UTF8.self) else {
            throw fail(.invalidAtom, at: offset, "atom is not valid UTF-8")
        }
        let characters = name.unicodeScalars.count
        guard characters <= Atom.maximumLength else {
            throw fail(.invalidAtom, at: offset, "atom of \(characters) characters, over 255")
        }
        return Atom(name)
    }

    // MARK: Identifiers

    private mutating func pidBody(tag: UInt8, at offset: Int) throws(TermError) -> Pid {
        let node = try atom("pid node")
        let id = try u32("pid id")
        let serial = try u32("pid serial")
        let creation = tag == TermTag.newPid ? try u32("pid creation") : UInt32(try u8("pid creation"))
        return Pid(node: node, id: id, serial: serial, creation: creation)
    }

    private mutating func referenceBody(tag: UInt8, at offset: Int) throws(TermError) -> Reference {
        if tag == TermTag.reference {
            let node = try atom("reference node")
            let id = try u32("reference id")
            let creation = UInt32(try u8("reference creation"))
            return Reference(node: node, creation: creation, ids: [id])
        }
        let count = Int(try u16("reference length"))
        guard count > 0 else {
            throw fail(.invalidValue, at: offset, "reference without identifier words")
        }
        let node = try atom("reference node")
        let creation =
            tag == TermTag.newerReference
            ? try u32("reference creation") : UInt32(try u8("reference creation"))
        try need(count * 4, "reference of \(count) words")
        var ids: [UInt32] = []
        ids.reserveCapacity(count)
        for _ in 0..<count { ids.append(try u32("reference word")) }
        return Reference(node: node, creation: creation, ids: ids)
    }

    private mutating func portBody(tag: UInt8, at offset: Int) throws(TermError) -> Port {
        let node = try atom("port node")
        switch tag {
        case TermTag.v4Port:
            let id = try u64("port id")
            return Port(node: node, id: id, creation: try u32("port creation"))
        case TermTag.newPort:
            let id = try u32("port id")
            return Port(node: node, id: UInt64(id), creation: try u32("port creation"))
        default:
            let id = try u32("port id")
            return Port(node: node, id: UInt64(id), creation: UInt32(try u8("port creation")))
        }
    }

    // MARK: Funs

    /// Reads a fun's fixed fields: Size, Arity, Uniq, Index, NumFree, Module, OldIndex,
    /// OldUniq, Pid. Its free variables follow.
    private mutating func funHeader(at offset: Int) throws(TermError) -> FunHeader {
        let sizeOffset = position
        let size = Int(try u32("NEW_FUN_EXT size"))
        // The size counts itself and everything after the tag.
        guard size >= 4 + 1 + 16 + 4 + 4 else {
            throw fail(.invalidFun, at: offset, "NEW_FUN_EXT size \(size) is too small")
        }
        if size > end - sizeOffset {
            throw shortage(size, "NEW_FUN_EXT of \(size) bytes")
        }
        let funEnd = sizeOffset + size
        let arity = try u8("fun arity")
        position += 16  // Uniq: an MD5 of the module, opaque here; in bounds by the size check
        let index = try u32("fun index")
        let freeCount = try u32("fun free variable count")
        let module = try atom("fun module")
        let oldIndex = try smallInteger("fun old index")
        let oldUniq = try smallInteger("fun old uniq")
        let pidOffset = position
        let pidTag = try u8("fun pid")
        guard pidTag == TermTag.newPid || pidTag == TermTag.pid else {
            throw fail(.invalidFun, at: pidOffset, "fun pid has tag \(pidTag), not a pid")
        }
        let pid = try pidBody(tag: pidTag, at: pidOffset)
        if position > funEnd {
            throw fail(.invalidFun, at: offset, "NEW_FUN_EXT fields run past its declared size \(size)")
        }
        return FunHeader(
            start: offset, end: funEnd, module: module, arity: arity, index: index,
            freeVariableCount: freeCount, oldIndex: oldIndex, oldUniq: oldUniq, pid: pid)
    }

    private mutating func smallInteger(_ what: String) throws(TermError) -> Int64 {
        let offset = position
        switch try u8(what) {
        case TermTag.smallInteger: return Int64(try u8(what))
        case TermTag.integer: return Int64(Int32(bitPattern: try u32(what)))
        case let tag: throw fail(.invalidFun, at: offset, "\(what) has tag \(tag), not an integer")
        }
    }

    private mutating func finishFun(_ header: FunHeader) throws(TermError) -> Term {
        guard position == header.end else {
            throw fail(
                .invalidFun, at: header.start,
                "NEW_FUN_EXT declares \(header.end - header.start - 1) bytes but holds \(position - header.start - 1)")
        }
        let encoded = Array(UnsafeBufferPointer(rebasing: bytes[header.start..<header.end]))
        return .fun(
            Fun(
                encoded: encoded, module: header.module, arity: header.arity, index: header.index,
                freeVariableCount: header.freeVariableCount, oldIndex: header.oldIndex,
                oldUniq: header.oldUniq, pid: header.pid))
    }
}
