import CLZ4

/// LZ4 block compression (liblz4's block API), as values are kept in slabs.
///
/// A value is stored compressed only when that makes it smaller; callers learn that from
/// ``compress(_:into:)`` returning `nil`.
public enum LZ4Codec {
    /// Values shorter than this are never compressed: LZ4 cannot win on them.
    public static let minimumInputSize = 32

    /// Compresses `source` into `destination` and returns the compressed length, or `nil` when
    /// the result would not be strictly smaller than the input (incompressible data, or input
    /// too short) or does not fit `destination`.
    @inlinable
    public static func compress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard source.count >= minimumInputSize, source.count <= Int(LZ4_MAX_INPUT_SIZE) else { return nil }
        // Capacity one byte short of the input: liblz4 then fails (returns 0) exactly when
        // compression would not save space, so no bound-sized scratch buffer is needed.
        let capacity = min(destination.count, source.count - 1)
        guard capacity > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return nil }
        let written = LZ4_compress_default(
            src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(capacity)
        )
        return written > 0 ? Int(written) : nil
    }

    /// Decompresses `source` into `destination`, which must be exactly the original length.
    /// Returns `false` when the input is corrupt or does not decode to exactly that length.
    @inlinable
    public static func decompress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard let src = source.baseAddress, let dst = destination.baseAddress else {
            return source.isEmpty && destination.isEmpty
        }
        let written = LZ4_decompress_safe(
            src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count)
        )
        return written == destination.count
    }

    /// Compresses a byte array; `nil` when compression does not save space.
    public static func compress(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= minimumInputSize else { return nil }
        var output = [UInt8](repeating: 0, count: bytes.count - 1)
        let length = bytes.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in compress(src, into: dst) }
        }
        guard let length else { return nil }
        output.removeLast(output.count - length)
        return output
    }

    /// Decompresses a byte array whose original length is `originalLength`; `nil` when corrupt.
    public static func decompress(_ bytes: [UInt8], originalLength: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: originalLength)
        let ok = bytes.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in decompress(src, into: dst) }
        }
        return ok ? output : nil
    }
}
