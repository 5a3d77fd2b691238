#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An Erlang term, as carried by the External Term Format (see ``ExternalTermFormat``).
///
/// The model is faithful to the encoding where Erlang leaves a choice, so a decoded term
/// re-encodes to the same bytes whenever the input was in the form `term_to_binary/2` with
/// `{minor_version, 2}` produces (UTF-8 atoms). In particular:
/// - A list that arrived as `STRING_EXT` is a ``string(_:)``, distinct from the same character
///   codes as a ``list(_:tail:)``; each re-encodes with its own tag. Equality is therefore
///   equality of representation for lists: `.string([97])` is not `.list([.integer(97)], tail: .emptyList)`.
/// - Integers are canonical: decoding always yields ``integer(_:)`` for values that fit in
///   `Int64` and ``bigInteger(_:)`` only for values outside it. Build integers of unknown size
///   with ``normalizedInteger(_:)`` so that equal values compare equal.
/// - A non-empty list is `.list(elements, tail:)` with at least one element; the proper list's
///   tail is ``emptyList``. A `LIST_EXT` whose tail is itself a list or string (which Erlang
///   never writes, but reads as one flat list) stays nested, and re-encodes nested.
/// - Maps are unordered, as in Erlang; they encode in Erlang's map key order. Because list
///   forms are distinct, a map may hold `[]` and an empty `STRING_EXT` as two keys, which
///   Erlang considers one; Erlang rejects such a map, this model does not.
///
/// Only the cases with a large payload are `indirect`, so a `Term` stays small (24 bytes) and
/// an integer or an atom needs no allocation of its own.
public enum Term: Sendable, Hashable {
    /// An integer in `Int64` range (`SMALL_INTEGER_EXT`, `INTEGER_EXT`, or a small bignum).
    case integer(Int64)
    /// An integer outside `Int64` range (`SMALL_BIG_EXT`, `LARGE_BIG_EXT`).
    case bigInteger(BigInteger)
    /// A finite IEEE 754 double (`NEW_FLOAT_EXT`; the old text `FLOAT_EXT` decodes to it too).
    case float(Double)
    /// An atom (UTF-8 or Latin-1 atom tags on input, UTF-8 on output).
    case atom(Atom)
    /// A tuple of any arity (`SMALL_TUPLE_EXT`, `LARGE_TUPLE_EXT`).
    case tuple([Term])
    /// The empty list `[]` (`NIL_EXT`).
    case emptyList
    /// A non-empty list: `elements` (at least one) followed by `tail`, which is ``emptyList``
    /// for a proper list and anything else for an improper one (`LIST_EXT`).
    indirect case list([Term], tail: Term)
    /// A list of small integers sent as `STRING_EXT`: Erlang's `"text"` strings, byte by byte.
    case string([UInt8])
    /// A binary (`BINARY_EXT`).
    case binary([UInt8])
    /// A bitstring whose last byte holds only `trailingBits` significant bits (1...7), stored in
    /// its high bits with the low bits zero (`BIT_BINARY_EXT`).
    case bitBinary([UInt8], trailingBits: UInt8)
    /// A map (`MAP_EXT`).
    case map([Term: Term])
    /// A process identifier (`NEW_PID_EXT`; `PID_EXT` decodes to it too).
    indirect case pid(Pid)
    /// A reference (`NEWER_REFERENCE_EXT`; `NEW_REFERENCE_EXT` and `REFERENCE_EXT` decode to it).
    indirect case reference(Reference)
    /// A port identifier (`NEW_PORT_EXT`, `V4_PORT_EXT`; `PORT_EXT` decodes to it).
    indirect case port(Port)
    /// An external fun `fun Module:Function/Arity` (`EXPORT_EXT`).
    indirect case export(module: Atom, function: Atom, arity: UInt8)
    /// A local fun, kept as its exact bytes (`NEW_FUN_EXT`).
    indirect case fun(Fun)

    /// A proper list of `elements`: ``emptyList`` when there are none.
    public static func properList(_ elements: [Term]) -> Term {
        elements.isEmpty ? .emptyList : .list(elements, tail: .emptyList)
    }

    /// The integer `value` in canonical form: ``integer(_:)`` when it fits in `Int64`,
    /// ``bigInteger(_:)`` otherwise. Decoding always produces this form.
    public static func normalizedInteger(_ value: BigInteger) -> Term {
        if let small = value.int64Value { return .integer(small) }
        return .bigInteger(value)
    }

    /// A binary holding the UTF-8 bytes of `text`: how Erlang code usually carries text.
    public static func binary(_ text: String) -> Term {
        .binary(Array(text.utf8))
    }
}

/// An Erlang atom's name.
///
/// Two atoms are equal when their names have the same UTF-8 bytes: unlike `String`'s own
/// equality, canonically equivalent but differently encoded names are different atoms, as in
/// Erlang. Erlang limits an atom to ``maximumLength`` characters; the decoder rejects longer
/// ones, and the encoder writes only the first ``maximumLength`` characters of a longer name.
public struct Atom: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The most characters (Unicode code points) an Erlang atom may have.
    public static let maximumLength = 255

    /// The atom's name.
    public let name: String

    /// The atom named `name`.
    public init(_ name: String) {
        self.name = name
    }

    /// The atom named by a literal, so `.atom("ok")` reads as Erlang's `ok`.
    public init(stringLiteral value: String) {
        self.name = value
    }

    /// True when both names have the same UTF-8 bytes.
    public static func == (lhs: Atom, rhs: Atom) -> Bool {
        let left = lhs.name.utf8
        let right = rhs.name.utf8
        guard left.count == right.count else { return false }
        // Native strings hold their UTF-8 contiguously: compare the bytes in one go.
        let equal = left.withContiguousStorageIfAvailable { leftBytes in
            right.withContiguousStorageIfAvailable { rightBytes in
                leftBytes.isEmpty || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, leftBytes.count) == 0
            }
        }
        return (equal ?? nil) ?? left.elementsEqual(right)
    }

    /// Hashes the name's UTF-8 bytes, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = name.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        if hashed == nil {
            Array(name.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
        hasher.combine(0xFF as UInt8)  // never a UTF-8 byte: ends the name unambiguously
    }

    /// The name as Erlang prints it with `~p`, quoted when needed (`ok`, `'Hello World'`).
    public var description: String {
        var out = ""
        TermPrinter.writeAtom(self, to: &out)
        return out
    }
}

/// An integer of any size as a sign and a magnitude, the way the External Term Format carries
/// bignums.
public struct BigInteger: Sendable, Hashable {
    /// True for a negative value; never true for zero.
    public let isNegative: Bool
    /// The absolute value, little-endian base 256, without trailing (most significant) zero
    /// bytes; empty for zero.
    public let magnitude: [UInt8]

    /// The integer `-magnitude` or `+magnitude`, with `magnitude` little-endian base 256.
    /// Trailing zero bytes are dropped and zero is never negative.
    public init(isNegative: Bool, magnitude: [UInt8]) {
        var bytes = magnitude
        while let last = bytes.last, last == 0 { bytes.removeLast() }
        self.isNegative = isNegative && !bytes.isEmpty
        self.magnitude = bytes
    }

    /// The integer `value`.
    public init(_ value: Int64) {
        var bytes: [UInt8] = []
        var rest = value.magnitude
        while rest != 0 {
            bytes.append(UInt8(truncatingIfNeeded: rest))
            rest >>= 8
        }
        self.isNegative = value < 0
        self.magnitude = bytes
    }

    /// The value as an `Int64`, or nil when it does not fit.
    public var int64Value: Int64? {
        guard magnitude.count <= 8 else { return nil }
        var value: UInt64 = 0
        for byte in magnitude.reversed() { value = value << 8 | UInt64(byte) }
        if isNegative {
            if value <= UInt64(Int64.max) { return -Int64(value) }
            return value == UInt64(Int64.max) + 1 ? Int64.min : nil
        }
        return value <= UInt64(Int64.max) ? Int64(value) : nil
    }

    /// The value in decimal, with a leading `-` when negative.
    public var decimal: String {
        if magnitude.isEmpty { return "0" }
        // Base 10^9 limbs make the repeated division cheap: one pass per nine digits.
        var limbs: [UInt32] = []
        limbs.reserveCapacity((magnitude.count + 3) / 4)
        var index = 0
        while index < magnitude.count {
            var limb: UInt32 = 0
            for shift in 0..<4 where index + shift < magnitude.count {
                limb |= UInt32(magnitude[index + shift]) << (8 * UInt32(shift))
            }
            limbs.append(limb)
            index += 4
        }
        var chunks: [UInt32] = []
        while !limbs.isEmpty {
            var remainder: UInt64 = 0
            for position in stride(from: limbs.count - 1, through: 0, by: -1) {
                let current = remainder << 32 | UInt64(limbs[position])
                limbs[position] = UInt32(current / 1_000_000_000)
                remainder = current % 1_000_000_000
            }
            chunks.append(UInt32(remainder))
            while let last = limbs.last, last == 0 { limbs.removeLast() }
        }
        var text = isNegative ? "-" : ""
        text += String(chunks.removeLast())
        for chunk in chunks.reversed() {
            let digits = String(chunk)
            text += String(repeating: "0", count: 9 - digits.count) + digits
        }
        return text
    }
}

/// A process identifier: the node it lives on and its numbers there.
public struct Pid: Sendable, Hashable {
    /// The node the process runs on, e.g. `brain@127.0.0.1`.
    public var node: Atom
    /// The process number on that node.
    public var id: UInt32
    /// The serial, which grows when process numbers wrap.
    public var serial: UInt32
    /// The node incarnation (the creation epmd returned at registration; 0 is reserved).
    public var creation: UInt32

    /// The pid `id`/`serial` of incarnation `creation` of `node`.
    public init(node: Atom, id: UInt32, serial: UInt32, creation: UInt32) {
        self.node = node
        self.id = id
        self.serial = serial
        self.creation = creation
    }
}

/// A reference: the node that made it and its identifier words, treated as opaque.
public struct Reference: Sendable, Hashable {
    /// The node that made the reference.
    public var node: Atom
    /// The node incarnation.
    public var creation: UInt32
    /// The identifier words in External Term Format order (least significant first); Erlang
    /// uses 3 for plain references and up to 5 for others.
    public var ids: [UInt32]

    /// The reference `ids` of incarnation `creation` of `node`.
    public init(node: Atom, creation: UInt32, ids: [UInt32]) {
        self.node = node
        self.creation = creation
        self.ids = ids
    }
}

/// A port identifier.
public struct Port: Sendable, Hashable {
    /// The node the port belongs to.
    public var node: Atom
    /// The port number; numbers above `UInt32.max` need `V4_PORT_EXT`.
    public var id: UInt64
    /// The node incarnation.
    public var creation: UInt32

    /// The port `id` of incarnation `creation` of `node`.
    public init(node: Atom, id: UInt64, creation: UInt32) {
        self.node = node
        self.id = id
        self.creation = creation
    }
}

/// A local fun (a closure), kept as the exact bytes it arrived in so that it re-encodes
/// unchanged. Only the decoder makes one, after checking the bytes' structure.
public struct Fun: Sendable, Hashable {
    /// The whole `NEW_FUN_EXT` encoding, from its tag (112) to its last free variable.
    public let encoded: [UInt8]
    /// The module that defines the fun.
    public let module: Atom
    /// The number of arguments the fun takes.
    public let arity: UInt8
    /// The fun's index in its module's fun table.
    public let index: UInt32
    /// The number of free variables captured in the closure.
    public let freeVariableCount: UInt32
    /// The old-style index, which Erlang prints in `#Fun<Module.OldIndex.OldUniq>`.
    public let oldIndex: Int64
    /// The old-style hash of the fun's code, printed in `#Fun<...>`.
    public let oldUniq: Int64
    /// The process that created the fun.
    public let pid: Pid

    init(
        encoded: [UInt8], module: Atom, arity: UInt8, index: UInt32, freeVariableCount: UInt32,
        oldIndex: Int64, oldUniq: Int64, pid: Pid
    ) {
        self.encoded = encoded
        self.module = module
        self.arity = arity
        self.index = index
        self.freeVariableCount = freeVariableCount
        self.oldIndex = oldIndex
        self.oldUniq = oldUniq
        self.pid = pid
    }

    /// True when both funs have the same encoding; every other property is parsed from it.
    public static func == (lhs: Fun, rhs: Fun) -> Bool {
        lhs.encoded == rhs.encoded
    }

    /// Hashes the encoding, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(encoded)
    }
}
