/// A bounded zlib decoder (RFC 1950 framing around RFC 1951 DEFLATE data), for compressed
/// External Term Format terms (tag 80).
///
/// It decodes stored, fixed-Huffman and dynamic-Huffman blocks, verifies the Adler-32
/// checksum, and refuses to produce a single byte beyond the size the term declared, so a
/// "zip bomb" costs at most that many bytes. Errors are ``TermError`` with code
/// ``TermError/Code/invalidCompressed`` or ``TermError/Code/truncated``.
struct Inflater {
    private let input: UnsafeBufferPointer<UInt8>
    private var position: Int
    private let baseOffset: Int
    private var bitBuffer: UInt64 = 0
    private var bitCount = 0
    private var output: [UInt8] = []
    private let expectedSize: Int

    /// Inflates the zlib stream that starts at `start` of `input` into exactly `expectedSize`
    /// bytes, and returns them with the offset just past the stream's checksum.
    static func inflate(
        _ input: UnsafeBufferPointer<UInt8>, from start: Int, expectedSize: Int, baseOffset: Int
    ) throws(TermError) -> (bytes: [UInt8], end: Int) {
        var inflater = Inflater(input: input, position: start, baseOffset: baseOffset, expectedSize: expectedSize)
        try inflater.run()
        return (inflater.output, inflater.position)
    }

    private init(input: UnsafeBufferPointer<UInt8>, position: Int, baseOffset: Int, expectedSize: Int) {
        self.input = input
        self.position = position
        self.baseOffset = baseOffset
        self.expectedSize = expectedSize
        // Grow as the data arrives rather than trusting the declared size up front: a few
        // bytes of input claiming the size limit then cost little.
        output.reserveCapacity(min(expectedSize, 1 << 20))
    }

    private func fail(_ message: String) -> TermError {
        TermError(.invalidCompressed, at: baseOffset + position, message)
    }

    private mutating func run() throws(TermError) {
        try header()
        var isFinal = false
        while !isFinal {
            isFinal = try bits(1) == 1
            switch try bits(2) {
            case 0: try storedBlock()
            case 1: try huffmanBlock(literals: FixedCodes.shared.literals, distances: FixedCodes.shared.distances)
            case 2: try dynamicBlock()
            default: throw fail("reserved DEFLATE block type 3")
            }
        }
        guard output.count == expectedSize else {
            throw fail("inflates to \(output.count) bytes, not the declared \(expectedSize)")
        }
        // The checksum is byte-aligned.
        alignToByte()
        guard input.count - position >= 4 else {
            throw TermError(.truncated, at: baseOffset + position, "zlib stream ends before its Adler-32 checksum")
        }
        var expected: UInt32 = 0
        for index in position..<position + 4 { expected = expected << 8 | UInt32(input[index]) }
        let actual = Inflater.adler32(output)
        guard actual == expected else {
            throw fail("Adler-32 checksum mismatch")
        }
        position += 4
    }

    private mutating func header() throws(TermError) {
        guard input.count - position >= 2 else {
            throw TermError(.truncated, at: baseOffset + position, "zlib header needs 2 bytes")
        }
        let method = input[position]
        let flags = input[position + 1]
        guard method & 0x0F == 8, method >> 4 <= 7 else {
            throw fail("zlib header does not declare DEFLATE with a window of at most 32 KiB")
        }
        guard (UInt16(method) << 8 | UInt16(flags)) % 31 == 0 else {
            throw fail("zlib header check bits are wrong")
        }
        guard flags & 0x20 == 0 else {
            throw fail("zlib stream requires a preset dictionary")
        }
        position += 2
    }

    // MARK: Bits

    /// The next `count` (at most 16) bits, least significant first, as DEFLATE packs them.
    private mutating func bits(_ count: Int) throws(TermError) -> Int {
        while bitCount < count {
            guard position < input.count else {
                throw TermError(.truncated, at: baseOffset + position, "DEFLATE data ends early")
            }
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt64(count)) - 1))
        bitBuffer >>= UInt64(count)
        bitCount -= count
        return value
    }

    /// Buffers up to `count` bits without failing when the input ends first: the caller
    /// checks `bitCount` before using them.
    private mutating func peekRefill(_ count: Int) {
        while bitCount < count && position < input.count {
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
    }

    /// Drops the bits left in the current byte and hands back whole bytes buffered ahead, so
    /// `position` is the next unread byte.
    private mutating func alignToByte() {
        position -= bitCount / 8
        bitBuffer = 0
        bitCount = 0
    }

    private mutating func reserveOutput(_ count: Int) throws(TermError) {
        if count > expectedSize - output.count {
            throw fail("inflates to more than the declared \(expectedSize) bytes")
        }
    }

    // MARK: Blocks

    private mutating func storedBlock() throws(TermError) {
        alignToByte()
        guard input.count - position >= 4 else {
            throw TermError(.truncated, at: baseOffset + position, "stored block header needs 4 bytes")
        }
        let length = Int(input[position]) | Int(input[position + 1]) << 8
        let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
        guard length == complement ^ 0xFFFF else {
            throw fail("stored block length and its complement disagree")
        }
        position += 4
        guard input.count - position >= length else {
            throw TermError(.truncated, at: baseOffset + position, "stored block of \(length) bytes is cut short")
        }
        try reserveOutput(length)
        output.append(contentsOf: UnsafeBufferPointer(rebasing: input[position..<position + length]))
        position += length
    }

    private mutating func dynamicBlock() throws(TermError) {
        let literalCount = try bits(5) + 257
        let distanceCount = try bits(5) + 1
        let codeLengthCount = try bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw fail("dynamic block declares \(literalCount) literal or \(distanceCount) distance codes")
        }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for index in 0..<codeLengthCount {
            codeLengthLengths[Inflater.codeLengthOrder[index]] = UInt8(try bits(3))
        }
        guard let codeLengths = HuffmanCode(lengths: codeLengthLengths[...], allowIncomplete: false) else {
            throw fail("invalid code length code")
        }
        var lengths = [UInt8](repeating: 0, count: literalCount + distanceCount)
        var index = 0
        while index < lengths.count {
            let symbol = try decode(codeLengths)
            if symbol < 16 {
                lengths[index] = UInt8(symbol)
                index += 1
                continue
            }
            let value: UInt8
            let repeatCount: Int
            switch symbol {
            case 16:
                guard index > 0 else { throw fail("code length repeat with no previous length") }
                value = lengths[index - 1]
                repeatCount = 3 + (try bits(2))
            case 17:
                value = 0
                repeatCount = 3 + (try bits(3))
            default:
                value = 0
                repeatCount = 11 + (try bits(7))
            }
            guard index + repeatCount <= lengths.count else {
                throw fail("code lengths overflow the declared code counts")
            }
            for _ in 0..<repeatCount {
                lengths[index] = value
                index += 1
            }
        }
        guard lengths[256] != 0 else { throw fail("dynamic block has no end-of-block code") }
        guard let literals = HuffmanCode(lengths: lengths[0..<literalCount], allowIncomplete: true),
            let distances = HuffmanCode(lengths: lengths[literalCount...], allowIncomplete: true)
        else {
            throw fail("invalid literal or distance code")
        }
        try huffmanBlock(literals: literals, distances: distances)
    }

    private mutating func huffmanBlock(literals: HuffmanCode, distances: HuffmanCode) throws(TermError) {
        while true {
            let symbol = try decode(literals)
            if symbol < 256 {
                try reserveOutput(1)
                output.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let lengthIndex = symbol - 257
            guard lengthIndex < Inflater.lengthBase.count else {
                throw fail("invalid length symbol \(symbol)")
            }
            let length = Inflater.lengthBase[lengthIndex] + (try bits(Inflater.lengthExtra[lengthIndex]))
            let distanceSymbol = try decode(distances)
            guard distanceSymbol < Inflater.distanceBase.count else {
                throw fail("invalid distance symbol \(distanceSymbol)")
            }
            let distance = Inflater.distanceBase[distanceSymbol] + (try bits(Inflater.distanceExtra[distanceSymbol]))
            guard distance <= output.count else {
                throw fail("distance \(distance) reaches before the start of the data")
            }
            try reserveOutput(length)
            // Byte by byte: the source may overlap the bytes being written (a run).
            var from = output.count - distance
            for _ in 0..<length {
                output.append(output[from])
                from += 1
            }
        }
    }

    /// Decodes one symbol of a canonical Huffman code: codes of up to
    /// ``HuffmanCode/fastBits`` bits by one table lookup, longer ones a bit at a time. Codes of
    /// each length are consecutive integers, so a code of length `n` is valid when it falls
    /// among the `count[n]` codes that start at `first`.
    private mutating func decode(_ code: HuffmanCode) throws(TermError) -> Int {
        peekRefill(HuffmanCode.fastBits)
        let entry = code.fast[Int(bitBuffer & UInt64(HuffmanCode.fastMask))]
        let length = Int(entry & 0xF)
        if length != 0 && length <= bitCount {
            bitBuffer >>= UInt64(length)
            bitCount -= length
            return Int(entry >> 4)
        }
        var value = 0
        var first = 0
        var index = 0
        for length in 1...15 {
            value |= try bits(1)
            let count = code.counts[length]
            if value - first < count {
                return Int(code.symbols[index + value - first])
            }
            index += count
            first = (first + count) << 1
            value <<= 1
        }
        throw fail("invalid Huffman code")
    }

    // MARK: Tables (RFC 1951, 3.2.5 and 3.2.7)

    private static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    private static let lengthBase = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
        163, 195, 227, 258,
    ]
    private static let lengthExtra = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ]
    private static let distanceBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ]
    private static let distanceExtra = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    ]

    /// The Adler-32 checksum of `bytes` (RFC 1950, 8.2).
    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        let modulus: UInt32 = 65521
        var a: UInt32 = 1
        var b: UInt32 = 0
        var index = 0
        while index < bytes.count {
            // 5552 bytes is the longest run whose sums cannot overflow 32 bits before the modulo.
            let chunkEnd = min(index + 5552, bytes.count)
            while index < chunkEnd {
                a &+= UInt32(bytes[index])
                b &+= a
                index += 1
            }
            a %= modulus
            b %= modulus
        }
        return b << 16 | a
    }
}

/// A canonical Huffman code given by its code lengths: how many codes each length has, and
/// the symbols in code order.
struct HuffmanCode: Sendable {
    /// `counts[n]` codes have length `n` (index 0 unused).
    let counts: [Int]
    /// Symbols sorted by code length, then by symbol value: the order canonical codes take.
    let symbols: [UInt16]
    /// For the next ``fastBits`` input bits (least significant first, as DEFLATE packs them):
    /// `symbol << 4 | length` of the code they start with, or 0 when that code is longer.
    let fast: [UInt16]

    /// The width of the lookup table: most literal and distance codes are this short.
    static let fastBits = 9
    static let fastMask = (1 << fastBits) - 1

    /// The code for `lengths` (one per symbol, 0 for an unused symbol), or nil when the lengths
    /// over-subscribe the code space, or leave it incomplete where that is not allowed. As in
    /// zlib, a literal or distance code may be incomplete only when it has a single code of
    /// length 1, or no code at all.
    init?(lengths: ArraySlice<UInt8>, allowIncomplete: Bool) {
        var counts = [Int](repeating: 0, count: 16)
        for length in lengths { counts[Int(length)] += 1 }
        var left = 1
        for length in 1...15 {
            left = left << 1 - counts[length]
            if left < 0 { return nil }
        }
        let used = lengths.count - counts[0]
        if left > 0 && used > 0 {
            guard allowIncomplete, used == 1, counts[1] == 1 else { return nil }
        }
        var offsets = [Int](repeating: 0, count: 16)
        for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
        var symbols = [UInt16](repeating: 0, count: used)
        for (symbol, length) in lengths.enumerated() where length != 0 {
            symbols[offsets[Int(length)]] = UInt16(symbol)
            offsets[Int(length)] += 1
        }
        counts[0] = 0
        // Walk the codes in canonical order, assigning consecutive values per length, and
        // enter each short one under every table index that starts with its bit-reversed code.
        var fast = [UInt16](repeating: 0, count: 1 << HuffmanCode.fastBits)
        var code = 0
        var index = 0
        for length in 1...HuffmanCode.fastBits {
            for _ in 0..<counts[length] {
                var reversed = 0
                for bit in 0..<length where code & (1 << bit) != 0 {
                    reversed |= 1 << (length - 1 - bit)
                }
                let entry = symbols[index] << 4 | UInt16(length)
                var slot = reversed
                while slot < fast.count {
                    fast[slot] = entry
                    slot += 1 << length
                }
                code += 1
                index += 1
            }
            code <<= 1
        }
        self.counts = counts
        self.symbols = symbols
        self.fast = fast
    }
}

/// The fixed codes of block type 1 (RFC 1951, 3.2.6), built once.
private struct FixedCodes: Sendable {
    let literals: HuffmanCode
    let distances: HuffmanCode

    static let shared = FixedCodes()

    private init() {
        var lengths = [UInt8](repeating: 8, count: 288)
        for symbol in 144..<256 { lengths[symbol] = 9 }
        for symbol in 256..<280 { lengths[symbol] = 7 }
        // Both tables are complete by construction.
        literals = HuffmanCode(lengths: lengths[...], allowIncomplete: false)!
        // 32 five-bit codes; symbols 30 and 31 exist in the code but are rejected when decoded.
        distances = HuffmanCode(lengths: [UInt8](repeating: 5, count: 32)[...], allowIncomplete: false)!
    }
}
