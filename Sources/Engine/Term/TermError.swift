/// Why bytes could not be decoded as an External Term Format term.
///
/// ``description`` names the problem and the byte offset where it was found, e.g.
/// `truncated at byte 12: binary of 100 bytes needs 100 more bytes, 3 remain`.
public struct TermError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem; stable, so callers may switch on it.
    public enum Code: String, Sendable {
        /// The input ended in the middle of a term.
        case truncated
        /// The first byte is not the version byte 131.
        case badVersion = "bad_version"
        /// A tag this decoder does not know (or does not accept, such as `ATOM_CACHE_REF`).
        case unknownTag = "unknown_tag"
        /// Bytes follow the term where exactly one term was expected.
        case trailingBytes = "trailing_bytes"
        /// Terms are nested deeper than ``TermLimits/maxDepth``.
        case depthLimit = "depth_limit"
        /// The term has more elements than ``TermLimits/maxElements``.
        case elementLimit = "element_limit"
        /// The term, or a compressed term's declared uncompressed size, exceeds
        /// ``TermLimits/maxBytes``.
        case sizeLimit = "size_limit"
        /// An atom is not valid UTF-8, or has more than 255 characters, or appears where an atom
        /// must be and is not one.
        case invalidAtom = "invalid_atom"
        /// A float is not finite or its text form does not parse.
        case invalidFloat = "invalid_float"
        /// A field holds a value Erlang itself rejects (a bignum sign byte other than 0 or 1, a
        /// bit count out of range, a reference without words...).
        case invalidValue = "invalid_value"
        /// A map holds the same key twice.
        case duplicateMapKey = "duplicate_map_key"
        /// A fun's declared size disagrees with its contents.
        case invalidFun = "invalid_fun"
        /// A compressed term's zlib data is malformed, fails its checksum, or does not inflate
        /// to exactly its declared size.
        case invalidCompressed = "invalid_compressed"
    }

    /// The kind of problem.
    public var code: Code
    /// The offset of the byte where the problem was found, counted from the start of the
    /// input; inside a compressed term, counted within its uncompressed data.
    public var offset: Int
    /// A human-readable account of the problem.
    public var message: String

    /// An error of kind `code` found at byte `offset`.
    public init(_ code: Code, at offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    /// `<code> at byte <offset>: <message>`.
    public var description: String { "\(code.rawValue) at byte \(offset): \(message)" }
}

/// Bounds on what the decoder accepts, all checked before the memory they guard is allocated.
public struct TermLimits: Sendable, Equatable {
    /// The deepest nesting of tuples, lists, maps and funs' free variables. The decoder keeps
    /// its own stack, so this bounds memory and the depth of later recursive walks (encoding,
    /// printing, comparing), never the decoder's native stack.
    public var maxDepth: Int
    /// The most terms, counting every nested element, key and value.
    public var maxElements: Int
    /// The most bytes of encoded input one term may take, and the largest uncompressed size a
    /// compressed term may declare.
    public var maxBytes: Int

    /// Limits for a term of up to `maxBytes` bytes, `maxElements` elements, nested
    /// `maxDepth` deep.
    public init(maxDepth: Int, maxElements: Int, maxBytes: Int) {
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        self.maxBytes = maxBytes
    }

    /// 512 levels, a million elements, 64 MiB: far beyond any record a cache holds, small
    /// enough that a hostile term cannot exhaust memory or stack.
    public static let `default` = TermLimits(maxDepth: 512, maxElements: 1_000_000, maxBytes: 64 << 20)
}
