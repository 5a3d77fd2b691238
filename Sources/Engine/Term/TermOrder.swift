extension Term {
    /// Compares two terms in Erlang's standard term order:
    /// number < atom < reference < fun < port < pid < tuple < map < [] < list < bitstring.
    ///
    /// Returns a negative number, zero or a positive number. Numbers compare by value, and an
    /// integer sorts before a float of equal value. With `exact`, every integer sorts before
    /// every float, at any depth: Erlang's order of map keys, which `term_to_binary` and `~p`
    /// follow for maps of up to 32 keys. Erlang's order among pids, ports, references and
    /// funs of different nodes depends on node-table internals; here they compare by node name,
    /// then by their numbers, which is a total order but not necessarily Erlang's.
    static func order(_ lhs: Term, _ rhs: Term, exact: Bool = false) -> Int {
        let lhsRank = lhs.orderRank
        let rhsRank = rhs.orderRank
        if lhsRank != rhsRank { return lhsRank < rhsRank ? -1 : 1 }
        switch (lhs, rhs) {
        case (.integer, _), (.bigInteger, _), (.float, _):
            if exact {
                let lhsIsFloat = if case .float = lhs { true } else { false }
                let rhsIsFloat = if case .float = rhs { true } else { false }
                if lhsIsFloat != rhsIsFloat { return lhsIsFloat ? 1 : -1 }
            }
            return compareNumbers(lhs, rhs)
        case (.atom(let a), .atom(let b)):
            return compareAtoms(a, b)
        case (.reference(let a), .reference(let b)):
            let byNode = compareAtoms(a.node, b.node)
            if byNode != 0 { return byNode }
            if a.ids.count != b.ids.count { return a.ids.count < b.ids.count ? -1 : 1 }
            for (x, y) in zip(a.ids.reversed(), b.ids.reversed()) where x != y { return x < y ? -1 : 1 }
            return compareValues(a.creation, b.creation)
        case (.export(let m1, let f1, let a1), .export(let m2, let f2, let a2)):
            let byModule = compareAtoms(m1, m2)
            if byModule != 0 { return byModule }
            let byFunction = compareAtoms(f1, f2)
            return byFunction != 0 ? byFunction : compareValues(a1, a2)
        case (.export, .fun): return 1
        case (.fun, .export): return -1
        case (.fun(let a), .fun(let b)):
            return compareBytes(a.encoded, bitCount: a.encoded.count * 8, b.encoded, bitCount: b.encoded.count * 8)
        case (.port(let a), .port(let b)):
            let byNode = compareAtoms(a.node, b.node)
            if byNode != 0 { return byNode }
            return a.id != b.id ? compareValues(a.id, b.id) : compareValues(a.creation, b.creation)
        case (.pid(let a), .pid(let b)):
            let byNode = compareAtoms(a.node, b.node)
            if byNode != 0 { return byNode }
            if a.serial != b.serial { return compareValues(a.serial, b.serial) }
            return a.id != b.id ? compareValues(a.id, b.id) : compareValues(a.creation, b.creation)
        case (.tuple(let a), .tuple(let b)):
            if a.count != b.count { return a.count < b.count ? -1 : 1 }
            for (x, y) in zip(a, b) {
                let result = order(x, y, exact: exact)
                if result != 0 { return result }
            }
            return 0
        case (.map(let a), .map(let b)):
            if a.count != b.count { return a.count < b.count ? -1 : 1 }
            let aPairs = sortedPairs(a)
            let bPairs = sortedPairs(b)
            for (x, y) in zip(aPairs, bPairs) {
                let result = order(x.key, y.key, exact: exact)
                if result != 0 { return result }
            }
            for (x, y) in zip(aPairs, bPairs) {
                let result = order(x.value, y.value, exact: exact)
                if result != 0 { return result }
            }
            return 0
        case (.binary, _), (.bitBinary, _):
            let (a, aBits) = lhs.bitstring
            let (b, bBits) = rhs.bitstring
            return compareBytes(a, bitCount: aBits, b, bitCount: bBits)
        default:
            if lhsRank == Term.emptyListRank { return 0 }
            return compareLists(lhs, rhs, exact: exact)
        }
    }

    /// The pairs of a map sorted in Erlang's map key order (``order(_:_:exact:)`` with `exact`).
    /// Keys Erlang would consider the
    /// same list but that differ in form (a `STRING_EXT` and a `LIST_EXT` of the same codes)
    /// are ordered by their encodings, so the order is total and encoding is deterministic.
    static func sortedPairs(_ map: [Term: Term]) -> [(key: Term, value: Term)] {
        map.sorted { lhs, rhs in
            let result = order(lhs.key, rhs.key, exact: true)
            if result != 0 { return result < 0 }
            return ExternalTermFormat.encode(lhs.key).lexicographicallyPrecedes(ExternalTermFormat.encode(rhs.key))
        }
    }

    private static let emptyListRank = 8

    private var orderRank: Int {
        switch self {
        case .integer, .bigInteger, .float: 0
        case .atom: 1
        case .reference: 2
        case .fun, .export: 3
        case .port: 4
        case .pid: 5
        case .tuple: 6
        case .map: 7
        case .emptyList: Term.emptyListRank
        case .string(let bytes): bytes.isEmpty ? Term.emptyListRank : 9
        case .list: 9
        case .binary, .bitBinary: 10
        }
    }

    /// The bytes of a binary or bitstring and its length in bits.
    private var bitstring: ([UInt8], Int) {
        switch self {
        case .binary(let bytes): (bytes, bytes.count * 8)
        case .bitBinary(let bytes, let bits): (bytes, max(bytes.count - 1, 0) * 8 + Int(bits))
        default: ([], 0)
        }
    }

    private static func compareValues<T: Comparable>(_ a: T, _ b: T) -> Int {
        a < b ? -1 : (a == b ? 0 : 1)
    }

    static func compareAtoms(_ a: Atom, _ b: Atom) -> Int {
        if a == b { return 0 }
        return a.name.utf8.lexicographicallyPrecedes(b.name.utf8) ? -1 : 1
    }

    private static func compareBytes(_ a: [UInt8], bitCount aBits: Int, _ b: [UInt8], bitCount bBits: Int) -> Int {
        let common = min(aBits, bBits)
        let wholeBytes = common / 8
        for index in 0..<wholeBytes where a[index] != b[index] {
            return a[index] < b[index] ? -1 : 1
        }
        let partialBits = common % 8
        if partialBits > 0 {
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - partialBits))
            let x = a[wholeBytes] & mask
            let y = b[wholeBytes] & mask
            if x != y { return x < y ? -1 : 1 }
        }
        return compareValues(aBits, bBits)
    }

    // MARK: Numbers

    private static func compareNumbers(_ lhs: Term, _ rhs: Term) -> Int {
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): return compareValues(a, b)
        case (.float(let a), .float(let b)): return compareValues(a, b)
        case (.integer(let a), .float(let b)): return compareInteger(a, toFloat: b)
        case (.float(let a), .integer(let b)): return -compareInteger(b, toFloat: a)
        case (.bigInteger(let a), .bigInteger(let b)): return compareBig(a, b)
        case (.bigInteger(let a), .integer(let b)): return compareBig(a, BigInteger(b))
        case (.integer(let a), .bigInteger(let b)): return compareBig(BigInteger(a), b)
        case (.bigInteger(let a), .float(let b)): return compareBig(a, toFloat: b)
        case (.float(let a), .bigInteger(let b)): return -compareBig(b, toFloat: a)
        default: return 0
        }
    }

    /// Exact comparison of an integer with a float; on equal values the integer comes first.
    private static func compareInteger(_ integer: Int64, toFloat float: Double) -> Int {
        if float >= 9_223_372_036_854_775_808.0 { return -1 }  // 2^63: above every Int64
        if float < -9_223_372_036_854_775_808.0 { return 1 }
        let floor = float.rounded(.down)
        let whole = Int64(floor)
        if integer > whole { return 1 }
        return -1  // below, or equal to the float's integer part: the integer sorts first
    }

    private static func compareBig(_ a: BigInteger, _ b: BigInteger) -> Int {
        if a.isNegative != b.isNegative { return a.isNegative ? -1 : 1 }
        let sign = a.isNegative ? -1 : 1
        if a.magnitude.count != b.magnitude.count {
            return a.magnitude.count < b.magnitude.count ? -sign : sign
        }
        for (x, y) in zip(a.magnitude.reversed(), b.magnitude.reversed()) where x != y {
            return x < y ? -sign : sign
        }
        return 0
    }

    /// A bignum (beyond `Int64`) against a float, by their doubles; a bignum too large for a
    /// double is beyond every finite float. On equal values the integer comes first.
    private static func compareBig(_ big: BigInteger, toFloat float: Double) -> Int {
        var approximate = 0.0
        for byte in big.magnitude.reversed() { approximate = approximate * 256 + Double(byte) }
        if big.isNegative { approximate = -approximate }
        return approximate > float ? 1 : -1
    }

    // MARK: Lists

    /// Compares two non-empty lists element by element, then by their tails.
    private static func compareLists(_ lhs: Term, _ rhs: Term, exact: Bool) -> Int {
        let (aElements, aTail) = lhs.flattenedList
        let (bElements, bTail) = rhs.flattenedList
        for (x, y) in zip(aElements, bElements) {
            let result = order(x, y, exact: exact)
            if result != 0 { return result }
        }
        if aElements.count == bElements.count { return order(aTail, bTail, exact: exact) }
        // One list ran out first: compare what remains of the other with the shorter's tail.
        if aElements.count < bElements.count {
            return order(aTail, .list(Array(bElements[aElements.count...]), tail: bTail), exact: exact)
        }
        return order(.list(Array(aElements[bElements.count...]), tail: aTail), bTail, exact: exact)
    }

    /// The elements of a list, with nested list tails and strings spliced in, and the final tail
    /// (``emptyList`` for a proper list). A non-list term has no elements and is its own tail.
    var flattenedList: (elements: [Term], tail: Term) {
        var elements: [Term] = []
        var current = self
        while true {
            switch current {
            case .list(let items, let tail):
                elements.append(contentsOf: items)
                current = tail
            case .string(let bytes):
                elements.append(contentsOf: bytes.map { .integer(Int64($0)) })
                current = .emptyList
            default:
                return (elements, current)
            }
        }
    }
}
