import XCTest

@testable import Engine

/// One term as the real `erl` encodes and prints it (see Fixtures/ErlangTermFixtures.swift).
struct TermFixture {
    /// What the term is, for failure messages.
    var name: String
    /// The term the decoder must produce.
    var term: Term
    /// `term_to_binary(T)`: Latin-1 atoms as ATOM_EXT.
    var etf: [UInt8]
    /// `term_to_binary(T, [{minor_version, 2}])`: UTF-8 atoms, what the encoder writes.
    var etfUTF8: [UInt8]
    /// `term_to_binary(T, [compressed])`: tag 80 when compression made it smaller.
    var compressed: [UInt8]
    /// `io_lib:format("~0p", [T])`.
    var printed: String
    /// False for a map of more than 32 keys, which erl encodes and prints in its hash order.
    var sameBytes: Bool
}

/// A small deterministic generator (SplitMix64), so a failing random case can be replayed.
struct SeededGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

final class TermTests: XCTestCase {
    // MARK: Against the real erl

    func testDecodesEveryTermErlangEncodes() throws {
        for fixture in ErlangTermFixtures.all {
            for (form, bytes) in [("etf", fixture.etf), ("utf8", fixture.etfUTF8), ("compressed", fixture.compressed)] {
                let decoded = try ExternalTermFormat.decode(bytes)
                guard case .fun(let got) = decoded, case .fun(let expected) = fixture.term else {
                    XCTAssertEqual(decoded, fixture.term, "\(fixture.name) (\(form))")
                    continue
                }
                // A fun keeps the bytes it came in, Latin-1 atoms included; compressed ones
                // inflate to term_to_binary/1's bytes.
                let source = form == "utf8" ? fixture.etfUTF8 : fixture.etf
                XCTAssertEqual(got.encoded, Array(source.dropFirst()), fixture.name)
                do {
                    XCTAssertEqual(got.module, expected.module, fixture.name)
                    XCTAssertEqual(got.arity, expected.arity, fixture.name)
                    XCTAssertEqual(got.index, expected.index, fixture.name)
                    XCTAssertEqual(got.freeVariableCount, expected.freeVariableCount, fixture.name)
                    XCTAssertEqual(got.oldIndex, expected.oldIndex, fixture.name)
                    XCTAssertEqual(got.oldUniq, expected.oldUniq, fixture.name)
                    XCTAssertEqual(got.pid, expected.pid, fixture.name)
                }
            }
        }
    }

    func testEncodesExactlyAsErlangWithUTF8Atoms() {
        for fixture in ErlangTermFixtures.all where fixture.sameBytes {
            XCTAssertEqual(ExternalTermFormat.encode(fixture.term), fixture.etfUTF8, fixture.name)
        }
    }

    func testLargeMapsEncodeInKeyOrderAndDecodeToTheSameMap() throws {
        let fixture = try XCTUnwrap(ErlangTermFixtures.all.first { !$0.sameBytes })
        let encoded = ExternalTermFormat.encode(fixture.term)
        XCTAssertEqual(encoded.count, fixture.etfUTF8.count)
        XCTAssertEqual(try ExternalTermFormat.decode(encoded), fixture.term)
        XCTAssertTrue(fixture.term.printed.hasPrefix("#{1 => 1,2 => 4,3 => 9,"), fixture.term.printed)
    }

    func testPrintsAsErlangDoes() {
        for fixture in ErlangTermFixtures.all where fixture.sameBytes {
            var expected = fixture.printed
            // erl numbers another node's pids, ports and references by its own node table;
            // without one, every node prints as 0.
            if fixture.name.hasPrefix("remote") || fixture.name.hasPrefix("five-word") || fixture.name == "v4 port" {
                expected = expected.replacing(/([<#][A-Za-z]*<?)\d+\./, with: { "\($0.1)0." })
            }
            XCTAssertEqual(fixture.term.printed, expected, fixture.name)
        }
    }

    func testPrintsFloatsAsErlangDoes() {
        XCTAssertGreaterThan(ErlangTermFixtures.floats.count, 1000)
        for (bits, printed) in ErlangTermFixtures.floats {
            XCTAssertEqual(Term.float(Double(bitPattern: bits)).printed, printed, "bits \(String(bits, radix: 16))")
        }
    }

    func testFixturesCoverCompressedFixedAndDynamicBlocks() {
        let compressed = ErlangTermFixtures.all.filter { $0.compressed[1] == 80 }
        XCTAssertGreaterThanOrEqual(compressed.count, 5)
        // The first block's type sits in bits 1-2 of the byte after the 2-byte zlib header.
        let blockTypes = Set(compressed.map { ($0.compressed[8] >> 1) & 3 })
        XCTAssertEqual(blockTypes, [1, 2])
    }

    // MARK: Every tag

    func testRoundTripsEveryTag() throws {
        let node: Atom = "brain@127.0.0.1"
        let terms: [Term] = [
            .integer(7), .integer(-7), .integer(70_000), .integer(Int64.max), .integer(Int64.min),
            .bigInteger(BigInteger(isNegative: true, magnitude: [1, 2, 3, 4, 5, 6, 7, 8, 9])),
            .bigInteger(BigInteger(isNegative: false, magnitude: [UInt8](repeating: 0xAB, count: 300))),
            .float(3.25), .atom("ok"), .atom("Ünïcødé ✓"), .tuple([]), .tuple([.atom("a"), .integer(1)]),
            .tuple((0..<256).map { .integer(Int64($0)) }), .emptyList,
            .properList([.atom("a")]), .list([.integer(1)], tail: .atom("b")), .string([104, 105]),
            .string([]), .binary([0, 255]), .binary([]), .bitBinary([0xFF, 0x80], trailingBits: 1),
            .map([.atom("k"): .binary("v")]), .map([:]),
            .pid(Pid(node: node, id: 85, serial: 0, creation: 3)),
            .reference(Reference(node: node, creation: 3, ids: [1, 2, 3])),
            .port(Port(node: node, id: 9, creation: 3)),
            .port(Port(node: node, id: 1 << 40, creation: 3)),
            .export(module: "lists", function: "map", arity: 2),
        ]
        for term in terms {
            let bytes = ExternalTermFormat.encode(term)
            XCTAssertEqual(bytes.first, 131)
            XCTAssertEqual(try ExternalTermFormat.decode(bytes), term, term.printed)
        }
    }

    func testDecodesTheOldForms() throws {
        let node: [UInt8] = [100, 0, 5] + Array("x@foo".utf8)
        let cases: [([UInt8], Term)] = [
            // FLOAT_EXT: "%.20e" text padded with NULs.
            ([131, 99] + Array("1.50000000000000000000e+00".utf8) + [0, 0, 0, 0, 0], .float(1.5)),
            ([131, 100, 0, 3, 97, 98, 99], .atom("abc")),
            ([131, 115, 1, 233], .atom("é")),
            ([131, 103] + node + [0, 0, 0, 7, 0, 0, 0, 9, 1], .pid(Pid(node: "x@foo", id: 7, serial: 9, creation: 1))),
            ([131, 101] + node + [0, 0, 0, 5, 2], .reference(Reference(node: "x@foo", creation: 2, ids: [5]))),
            (
                [131, 114, 0, 2] + node + [2, 0, 0, 0, 5, 0, 0, 0, 6],
                .reference(Reference(node: "x@foo", creation: 2, ids: [5, 6]))
            ),
            ([131, 102] + node + [0, 0, 0, 5, 2], .port(Port(node: "x@foo", id: 5, creation: 2))),
            // Non-canonical integers decode to their value.
            ([131, 98, 0, 0, 0, 5], .integer(5)),
            ([131, 110, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0], .integer(1)),
            ([131, 110, 0, 0], .integer(0)),
            // A bit binary with 8 bits in its last byte is a binary; unused bits are ignored.
            ([131, 77, 0, 0, 0, 1, 8, 255], .binary([255])),
            ([131, 77, 0, 0, 0, 1, 3, 255], .bitBinary([0xE0], trailingBits: 3)),
            ([131, 77, 0, 0, 0, 0, 0], .binary([])),
            // A LIST_EXT of no elements is its tail.
            ([131, 108, 0, 0, 0, 0, 97, 1], .integer(1)),
        ]
        for (bytes, expected) in cases {
            XCTAssertEqual(try ExternalTermFormat.decode(bytes), expected, "\(bytes)")
        }
        XCTAssertEqual(ExternalTermFormat.encode(.bitBinary([0xFF], trailingBits: 3)), [131, 77, 0, 0, 0, 1, 3, 0xE0])
    }

    func testStringsAndListsKeepTheirEncoding() throws {
        let string = Term.string([97, 98])
        let list = Term.properList([.integer(97), .integer(98)])
        XCTAssertNotEqual(string, list)
        XCTAssertEqual(string.printed, "\"ab\"")
        XCTAssertEqual(list.printed, "\"ab\"")
        XCTAssertEqual(try ExternalTermFormat.decode(ExternalTermFormat.encode(list)), list)
        // A list with a string tail, as Erlang never writes but accepts, re-encodes unchanged.
        let mixed: [UInt8] = [131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 98, 99]
        let decoded = try ExternalTermFormat.decode(mixed)
        XCTAssertEqual(decoded, .list([.integer(1)], tail: .string([98, 99])))
        XCTAssertEqual(ExternalTermFormat.encode(decoded), mixed)
        XCTAssertEqual(decoded.printed, "[1,98,99]")
        // Over 65535 bytes a string is written as a list, as Erlang writes it.
        let long = Term.string([UInt8](repeating: 120, count: 70_000))
        let longDecoded = try ExternalTermFormat.decode(ExternalTermFormat.encode(long))
        XCTAssertEqual(longDecoded, .properList([Term](repeating: .integer(120), count: 70_000)))
    }

    func testAtomsCompareByTheirBytes() {
        let composed = Atom("\u{E9}")
        let decomposed = Atom("e\u{301}")
        XCTAssertEqual(composed.name, decomposed.name)  // Swift's String equality
        XCTAssertNotEqual(composed, decomposed)  // Erlang's atom equality
        XCTAssertEqual(Set([Term.atom(composed), .atom(decomposed)]).count, 2)
    }

    func testLongAtomsAreCutTo255CharactersWhenEncoded() throws {
        let atom = Atom(String(repeating: "é", count: 300))
        let decoded = try ExternalTermFormat.decode(ExternalTermFormat.encode(.atom(atom)))
        XCTAssertEqual(decoded, .atom(Atom(String(repeating: "é", count: 255))))
    }

    func testBignumsPrintInDecimal() {
        let minus2to64 = BigInteger(isNegative: true, magnitude: [0, 0, 0, 0, 0, 0, 0, 0, 1])
        XCTAssertEqual(minus2to64.decimal, "-18446744073709551616")
        XCTAssertEqual(BigInteger(isNegative: true, magnitude: [0, 0]).decimal, "0")
        XCTAssertEqual(BigInteger(Int64.min).int64Value, Int64.min)
        XCTAssertEqual(Term.normalizedInteger(BigInteger(isNegative: false, magnitude: [5, 0, 0])), .integer(5))
    }

    // MARK: Seeded random terms

    func testRandomTermsRoundTrip() throws {
        var generator = SeededGenerator(state: 0x5EED)
        for iteration in 0..<3000 {
            let term = randomTerm(depth: 4, &generator)
            let bytes = ExternalTermFormat.encode(term)
            let decoded: Term
            do {
                decoded = try ExternalTermFormat.decode(bytes)
            } catch {
                XCTFail("iteration \(iteration): \(error) for \(term.printed)")
                continue
            }
            XCTAssertEqual(decoded, term, "iteration \(iteration): \(term.printed)")
            XCTAssertEqual(ExternalTermFormat.encode(decoded), bytes, "iteration \(iteration)")
            XCTAssertFalse(term.printed.isEmpty)
        }
    }

    private func randomTerm(depth: Int, _ generator: inout SeededGenerator) -> Term {
        let node: Atom = generator.below(2) == 0 ? "brain@127.0.0.1" : "nonode@nohost"
        switch generator.below(depth > 0 ? 18 : 12) {
        case 0: return .integer(Int64(generator.below(256)))
        case 1: return .integer(Int64(Int32(truncatingIfNeeded: generator.next())))
        case 2: return .integer(Int64(bitPattern: generator.next()))
        case 3:
            var magnitude = generator.bytes(9 + generator.below(40))
            magnitude[magnitude.count - 1] |= 1
            return .bigInteger(BigInteger(isNegative: generator.below(2) == 0, magnitude: magnitude))
        case 4:
            var value = Double(bitPattern: generator.next())
            while !value.isFinite { value = Double(bitPattern: generator.next()) }
            return .float(value)
        case 5:
            let names: [String] = ["ok", "Hello World", "[]", "", "é", "hello_世界", "it's", "a\nb"]
            if generator.below(3) == 0 {
                return .atom(Atom(String(repeating: "x", count: generator.below(256))))
            }
            return .atom(Atom(names[generator.below(names.count)]))
        case 6: return .emptyList
        case 7: return .string(generator.bytes(generator.below(20)))
        case 8: return .binary(generator.bytes(generator.below(20)))
        case 9:
            let bits = UInt8(1 + generator.below(7))
            var bytes = generator.bytes(1 + generator.below(5))
            bytes[bytes.count - 1] &= UInt8(truncatingIfNeeded: 0xFF << (8 - Int(bits)))
            return .bitBinary(bytes, trailingBits: bits)
        case 10:
            switch generator.below(5) {
            case 0:
                let id = UInt32(generator.below(1 << 20))
                return .pid(Pid(node: node, id: id, serial: 0, creation: UInt32(generator.below(9))))
            case 1:
                let ids = (0..<(1 + generator.below(5))).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
                let creation = UInt32(truncatingIfNeeded: generator.next())
                return .reference(Reference(node: node, creation: creation, ids: ids))
            case 2:
                return .port(Port(node: node, id: generator.next() >> UInt64(generator.below(64)), creation: 1))
            case 3:
                return .export(module: "lists", function: "seq", arity: UInt8(generator.below(256)))
            default:
                let fun = ErlangTermFixtures.all.first { $0.name == "closure" }!
                return fun.term
            }
        case 11: return .integer(-Int64(generator.below(1000)))
        case 12, 13: return .tuple((0..<generator.below(6)).map { _ in randomTerm(depth: depth - 1, &generator) })
        case 14, 15:
            let elements = (0...generator.below(5)).map { _ in randomTerm(depth: depth - 1, &generator) }
            let tail = generator.below(3) == 0 ? randomTerm(depth: depth - 1, &generator) : .emptyList
            return .list(elements, tail: tail)
        default:
            var map: [Term: Term] = [:]
            for _ in 0..<generator.below(5) {
                map[randomTerm(depth: depth - 1, &generator)] = randomTerm(depth: depth - 1, &generator)
            }
            return .map(map)
        }
    }

    // MARK: Limits and malformed input

    func testNesting100000DeepFailsCleanly() {
        var lists: [UInt8] = [131]
        for _ in 0..<100_000 { lists += [108, 0, 0, 0, 1] }
        lists += [106] + [UInt8](repeating: 106, count: 100_000)
        assertThrows(lists, .depthLimit)

        var tuples: [UInt8] = [131]
        for _ in 0..<100_000 { tuples += [104, 1] }
        tuples.append(106)
        assertThrows(tuples, .depthLimit)

        var maps: [UInt8] = [131]
        for _ in 0..<100_000 { maps += [116, 0, 0, 0, 1, 97, 1] }
        maps.append(106)
        assertThrows(maps, .depthLimit)

        // Within a raised limit the same nesting decodes: the decoder's stack is its own.
        var deep: [UInt8] = [131]
        for _ in 0..<5_000 { deep += [104, 1] }
        deep.append(106)
        let limits = TermLimits(maxDepth: 5_000, maxElements: 1_000_000, maxBytes: 1 << 20)
        XCTAssertNoThrow(try ExternalTermFormat.decode(deep, limits: limits))
    }

    func testHugeDeclaredLengthsAreRejectedBeforeAllocation() {
        let huge: [UInt8] = [255, 255, 255, 255]
        assertThrows([131, 108] + huge + [106], .truncated)  // list
        assertThrows([131, 109] + huge + [1, 2, 3], .truncated)  // binary
        assertThrows([131, 105] + huge + [97, 1], .truncated)  // tuple
        assertThrows([131, 116] + huge + [97, 1, 97, 2], .truncated)  // map
        assertThrows([131, 77] + huge + [3, 1], .truncated)  // bit binary
        assertThrows([131, 111] + huge + [0, 1], .truncated)  // bignum
        assertThrows([131, 107, 255, 255, 97], .truncated)  // string
        assertThrows([131, 90, 255, 255, 119, 1, 97, 0, 0, 0, 1], .truncated)  // reference
        assertThrows([131, 112] + huge + [1], .truncated)  // fun
    }

    func testLimitsOnElementsAndBytes() {
        let list = ExternalTermFormat.encode(.properList((0..<10).map { .integer($0) }))
        let fewElements = TermLimits(maxDepth: 10, maxElements: 5, maxBytes: 1 << 20)
        assertThrows(list, .elementLimit, limits: fewElements)
        let binary = ExternalTermFormat.encode(.binary([UInt8](repeating: 1, count: 100)))
        let fewBytes = TermLimits(maxDepth: 10, maxElements: 100, maxBytes: 50)
        assertThrows(binary, .sizeLimit, limits: fewBytes)
        let justEnough = TermLimits(maxDepth: 1, maxElements: 1, maxBytes: 105)
        XCTAssertNoThrow(try ExternalTermFormat.decode(binary, limits: justEnough))
    }

    func testAtomsOver255CharactersAreRejected() {
        let long = [UInt8](repeating: 97, count: 256)
        assertThrows([131, 118, 1, 0] + long, .invalidAtom)
        assertThrows([131, 100, 1, 0] + long, .invalidAtom)
        let twoByte = Array(String(repeating: "é", count: 256).utf8)
        assertThrows([131, 118, 2, 0] + twoByte, .invalidAtom)
        let ok = Array(String(repeating: "é", count: 255).utf8)
        let longest = Atom(String(repeating: "é", count: 255))
        XCTAssertEqual(try ExternalTermFormat.decode([131, 118, 1, 254] + ok), .atom(longest))
        assertThrows([131, 119, 2, 195, 40], .invalidAtom)  // not UTF-8
    }

    func testMalformedTermsNameTheProblem() {
        assertThrows([], .truncated)
        assertThrows([130, 97, 1], .badVersion)
        assertThrows([131, 97, 1, 0], .trailingBytes)
        assertThrows([131, 200], .unknownTag)
        assertThrows([131, 82, 0], .unknownTag)  // ATOM_CACHE_REF
        assertThrows([131, 70, 127, 240, 0, 0, 0, 0, 0, 0], .invalidFloat)  // infinity
        assertThrows([131, 70, 127, 248, 0, 0, 0, 0, 0, 0], .invalidFloat)  // NaN
        assertThrows([131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2], .duplicateMapKey)
        assertThrows([131, 77, 0, 0, 0, 0, 3], .invalidValue)
        assertThrows([131, 77, 0, 0, 0, 1, 0, 1], .invalidValue)
        assertThrows([131, 110, 1, 2, 5], .invalidValue)  // sign byte 2
        assertThrows([131, 113, 97, 1, 119, 1, 102, 97, 1], .invalidAtom)  // export module not an atom
        assertThrows([131, 104, 1, 80, 0, 0, 0, 1], .unknownTag)  // compression only at the top
        do {
            _ = try ExternalTermFormat.decode([131, 104, 2, 97, 1, 109, 0, 0, 0, 100, 1, 2])
            XCTFail("a truncated binary decoded")
        } catch {
            XCTAssertEqual(error.code, .truncated)
            XCTAssertEqual(error.offset, 10)
            XCTAssertEqual(error.description, "truncated at byte 10: BINARY_EXT of 100 bytes needs 100 bytes, 2 remain")
        }
    }

    func testFunSizeMustMatchItsContents() throws {
        let fixture = try XCTUnwrap(ErlangTermFixtures.all.first { $0.name == "closure" })
        var bytes = fixture.etfUTF8
        // Size is bytes 2...5; claim one byte fewer and one byte more than the contents hold.
        let size = bytes[2...5].reduce(0) { $0 << 8 | Int($1) }
        bytes[5] = UInt8(truncatingIfNeeded: size - 1)
        assertThrows(bytes, .invalidFun)
        bytes[5] = UInt8(truncatingIfNeeded: size + 1)
        XCTAssertThrowsError(try ExternalTermFormat.decode(bytes + [106]))
    }

    func testTruncationAtEveryOffsetIsAnError() {
        for fixture in ErlangTermFixtures.all {
            for bytes in [fixture.etf, fixture.etfUTF8, fixture.compressed] {
                for length in 0..<bytes.count {
                    let cut = Array(bytes[..<length])
                    XCTAssertThrowsError(try ExternalTermFormat.decode(cut), "\(fixture.name) cut at \(length)")
                }
            }
        }
    }

    func testRandomCorruptionNeverTraps() {
        var generator = SeededGenerator(state: 0xC0FFEE)
        let inputs = ErlangTermFixtures.all.flatMap { [$0.etfUTF8, $0.compressed] }
        var rejected = 0
        for _ in 0..<20_000 {
            var bytes = inputs[generator.below(inputs.count)]
            for _ in 0...generator.below(3) where bytes.count > 1 {
                bytes[1 + generator.below(bytes.count - 1)] = UInt8(truncatingIfNeeded: generator.next())
            }
            do {
                let term = try ExternalTermFormat.decode(bytes)
                _ = term.printed
                _ = ExternalTermFormat.encode(term)
            } catch {
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 10_000)
    }

    // MARK: Compressed terms

    func testCompressedTermDeclaringAHugeSizeIsRejected() {
        assertThrows([131, 80, 255, 255, 255, 255, 0x78, 0x9C, 3, 0], .sizeLimit)
        let limits = TermLimits(maxDepth: 10, maxElements: 10, maxBytes: 1000)
        assertThrows([131, 80, 0, 0, 3, 233, 0x78, 0x9C, 3, 0], .sizeLimit, limits: limits)
    }

    func testCompressedTermMustInflateToExactlyItsDeclaredSize() throws {
        let fixture = try XCTUnwrap(ErlangTermFixtures.all.first { $0.name == "long binary" })
        var bytes = fixture.compressed
        XCTAssertEqual(bytes[1], 80)
        let size = bytes[2...5].reduce(0) { $0 << 8 | Int($1) }
        // Declared smaller: inflating stops at the declared size and fails.
        bytes[2...5] = ArraySlice(be32(size - 1))
        assertThrows(bytes, .invalidCompressed)
        bytes[2...5] = ArraySlice(be32(size + 1))
        assertThrows(bytes, .invalidCompressed)
        // A flipped checksum byte.
        bytes = fixture.compressed
        bytes[bytes.count - 1] ^= 1
        assertThrows(bytes, .invalidCompressed)
    }

    func testInflatesStoredBlocks() throws {
        let payload: [UInt8] = [109, 0, 0, 0, 5] + Array("hello".utf8)
        // Two stored blocks: the first not final, the second final.
        var stream: [UInt8] = [0x78, 0x01]
        stream += [0x00, 4, 0, 0xFB, 0xFF] + payload[0..<4]
        stream += [0x01, 6, 0, 0xF9, 0xFF] + payload[4...]
        stream += be32(Int(Inflater.adler32(payload)))
        let term = [131, 80] + be32(payload.count) + stream
        XCTAssertEqual(try ExternalTermFormat.decode(term), .binary("hello"))
        // The checksum itself is checked against the RFC 1950 example value.
        XCTAssertEqual(Inflater.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
    }

    func testRejectsMalformedZlibStreams() {
        func compressed(_ stream: [UInt8]) -> [UInt8] { [131, 80, 0, 0, 0, 2] + stream }
        assertThrows(compressed([0x78, 0x9D, 3, 0]), .invalidCompressed)  // header check bits
        assertThrows(compressed([0x79, 0x9C, 3, 0]), .invalidCompressed)  // not DEFLATE
        assertThrows(compressed([0x78, 0xBB, 3, 0]), .invalidCompressed)  // preset dictionary
        assertThrows(compressed([0x78, 0x9C, 0x07]), .invalidCompressed)  // reserved block type
        assertThrows(compressed([0x78, 0x01, 0x01, 2, 0, 0, 0]), .invalidCompressed)  // bad NLEN
        // A fixed block whose first symbol is a back-reference with nothing before it.
        assertThrows(compressed([0x78, 0x9C, 0x03, 0x02]), .invalidCompressed)
    }

    func testCompressedDecodeReportsWhatItConsumed() throws {
        let fixture = try XCTUnwrap(ErlangTermFixtures.all.first { $0.name == "record" })
        let two = fixture.compressed + fixture.etfUTF8
        let first = try ExternalTermFormat.decodePrefix(two)
        XCTAssertEqual(first.consumed, fixture.compressed.count)
        let second = try ExternalTermFormat.decodePrefix(two, at: first.consumed)
        XCTAssertEqual(second.term, fixture.term)
        XCTAssertEqual(second.consumed, fixture.etfUTF8.count)
    }

    // MARK: Prefix decoding

    func testDecodePrefixLeavesWhatFollows() throws {
        var frame: [UInt8] = [112]
        ExternalTermFormat.encode(.tuple([.integer(6), .atom(""), .atom("brain")]), into: &frame)
        let controlEnd = frame.count
        ExternalTermFormat.encode(.tuple([.atom("s"), .binary("k"), .binary("v")]), into: &frame)
        let control = try ExternalTermFormat.decodePrefix(frame, at: 1)
        XCTAssertEqual(control.term, .tuple([.integer(6), .atom(""), .atom("brain")]))
        XCTAssertEqual(1 + control.consumed, controlEnd)
        let message = try frame.withUnsafeBytes { buffer in
            try ExternalTermFormat.decodePrefix(UnsafeRawBufferPointer(rebasing: buffer[controlEnd...]))
        }
        XCTAssertEqual(message.term, .tuple([.atom("s"), .binary("k"), .binary("v")]))
        XCTAssertEqual(controlEnd + message.consumed, frame.count)
        XCTAssertThrowsError(try ExternalTermFormat.decodePrefix(frame, at: frame.count))
    }

    // MARK: Printer details

    func testPrinterForms() {
        let record = Term.tuple([.atom("hp"), .integer(100), .properList([.atom("sword"), .binary("shield")])])
        XCTAssertEqual(record.printed, "{hp,100,[sword,<<\"shield\">>]}")
        XCTAssertEqual(Term.pid(Pid(node: "a@b", id: 85, serial: 2, creation: 1)).printed, "<0.85.2>")
        XCTAssertEqual(Atom("Hello World").description, "'Hello World'")
        let nested = Term.list([.integer(104)], tail: .list([.integer(105)], tail: .emptyList))
        XCTAssertEqual(nested.printed, "\"hi\"")
        XCTAssertEqual(Term.list([.atom("a")], tail: .string([])).printed, "[a]")
    }

    // MARK: Helpers

    private func be32(_ value: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    private func assertThrows(
        _ bytes: [UInt8], _ code: TermError.Code, limits: TermLimits = .default,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            let term = try ExternalTermFormat.decode(bytes, limits: limits)
            XCTFail("decoded \(term.printed) instead of failing with \(code)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.code, code, error.description, file: file, line: line)
        }
    }
}
