/// What the fuzz targets share: how they start, how an invariant fails, and how an input is
/// cut into the reads a socket could have delivered.
import CLibFuzzer

/// Runs libFuzzer's driver with the process's arguments and `testOneInput`.
///
/// SwiftPM links an executable's `main` to a function named `<Module>_main` (so that
/// executables can be tested), and libFuzzer's own `main` is never reached: each target
/// defines that function and calls this.
public func runLibFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

/// Stops the process with `message` when `condition` is false.
///
/// libFuzzer takes the trap for a crash and saves the input. `fatalError` rather than
/// `precondition`, because an optimised build drops `precondition`'s message.
@inline(__always)
public func invariant(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() {
        fatalError("fuzz invariant violated: \(message())", file: file, line: line)
    }
}

/// The fuzz input, as libFuzzer hands it over, read from the front.
///
/// The first bytes of an input usually steer the harness (which mode, how to cut the
/// stream); ``rest`` is the payload. Reading past the end gives zeros, so every input is
/// usable.
public struct FuzzInput {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    /// The `size` bytes at `data`; `data` may be nil when `size` is 0.
    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        self.bytes = UnsafeBufferPointer(start: size > 0 ? data : nil, count: data == nil ? 0 : size)
    }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// Every byte not read yet.
    public mutating func rest() -> [UInt8] {
        guard position < bytes.count else { return [] }
        defer { position = bytes.count }
        return Array(UnsafeBufferPointer(rebasing: bytes[position...]))
    }
}

/// Cuts a byte stream into chunks of pseudo-random sizes from a one-byte seed, so that a
/// decoder sees the same stream arrive in many different reads: one byte at a time, a few
/// bytes, or all at once.
public struct Chunker: Sequence, IteratorProtocol {
    private let bytes: [UInt8]
    private var position = 0
    private var state: UInt32
    private let largest: Int

    /// Chunks of `bytes`. The seed's low 2 bits pick the largest chunk (1, 7, 64 bytes or the
    /// whole stream), its other bits seed the sizes.
    public init(_ bytes: [UInt8], seed: UInt8) {
        self.bytes = bytes
        self.state = UInt32(seed) &* 0x9E37_79B9 | 1
        switch seed & 3 {
        case 0: largest = 1
        case 1: largest = 7
        case 2: largest = 64
        default: largest = Swift.max(bytes.count, 1)
        }
    }

    /// The next chunk, never empty, or nil at the end of the stream.
    public mutating func next() -> ArraySlice<UInt8>? {
        guard position < bytes.count else { return nil }
        // xorshift32: cheap, and the same sizes for the same seed on every run.
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        let size = 1 + Int(state % UInt32(largest))
        let end = Swift.min(position + size, bytes.count)
        defer { position = end }
        return bytes[position..<end]
    }
}

/// Bytes as lower-case hex, for invariant messages.
public func hex<Bytes: Sequence>(_ bytes: Bytes, limit: Int = 256) -> String where Bytes.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    var count = 0
    for byte in bytes {
        if count == limit {
            out.append(contentsOf: "...".utf8)
            break
        }
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
        count += 1
    }
    return String(decoding: out, as: UTF8.self)
}
