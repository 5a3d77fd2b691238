import NIOCore

/// What ``LineDecoder`` produces.
public enum LineFrame: Sendable, Equatable {
    /// One line's bytes, without its `\n` or `\r\n`. A slice of the read buffer: no copy.
    case line(ByteBuffer)
    /// A line went past the limit. Nothing follows it: the connection is to be closed.
    case tooLong(limit: Int)
}

/// Splits a byte stream into lines ended by `\n` or `\r\n`, with a bound on their length.
///
/// - A line is everything before a `\n`; one `\r` right before the `\n` is dropped too.
/// - A line longer than `maxLineBytes` (terminator excluded) yields one
///   ``LineFrame/tooLong(limit:)`` as soon as the excess is seen, without waiting for its
///   end; from then on every byte is discarded. So the decoder never holds more than
///   `maxLineBytes + 1` bytes of an unfinished line, whatever the client sends.
/// - At end of input, an unfinished last line (no `\n`) is discarded.
/// - Each `\n` is looked at once: bytes already scanned are not scanned again when more
///   arrive, so a long line fed one byte at a time costs linear time.
public struct LineDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = LineFrame

    /// The longest line accepted, terminator excluded.
    public let maxLineBytes: Int
    /// Bytes of the unfinished line already searched for `\n`.
    private var scanned = 0
    /// Set once a line was too long: the rest of the stream is dropped.
    private var discarding = false

    /// A decoder accepting lines of up to `maxLineBytes` bytes (at least 1).
    public init(maxLineBytes: Int) {
        precondition(maxLineBytes >= 1, "maxLineBytes must be at least 1")
        self.maxLineBytes = maxLineBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = nextFrame(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while let frame = nextFrame(&buffer) {
            context.fireChannelRead(wrapInboundOut(frame))
        }
        // An unfinished last line is no command: drop it.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        scanned = 0
        return .needMoreData
    }

    /// The next frame in `buffer`, consuming its bytes, or `nil` when more bytes are needed.
    ///
    /// The pure core of the decoder, usable without a channel.
    public mutating func nextFrame(_ buffer: inout ByteBuffer) -> LineFrame? {
        if discarding {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
        let readable = buffer.readableBytes
        guard readable > 0 else { return nil }
        let newline: Int? = buffer.withUnsafeReadableBytes { bytes in
            UnsafeRawBufferPointer(rebasing: bytes[scanned...]).firstIndex(of: UInt8(ascii: "\n"))
                .map { $0 + scanned }
        }
        guard let newline else {
            // Without a newline, `readable` bytes are the line so far, and one trailing `\r`
            // may yet turn out to be part of the terminator.
            let mayEndWithCR = buffer.getInteger(at: buffer.writerIndex - 1, as: UInt8.self) == 0x0D
            if readable > maxLineBytes + (mayEndWithCR ? 1 : 0) {
                return tooLong(&buffer)
            }
            scanned = readable
            return nil
        }
        scanned = 0
        var length = newline
        if length > 0, buffer.getInteger(at: buffer.readerIndex + length - 1, as: UInt8.self) == 0x0D {
            length -= 1
        }
        if length > maxLineBytes {
            return tooLong(&buffer)
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: newline + 1)
        return .line(line)
    }

    private mutating func tooLong(_ buffer: inout ByteBuffer) -> LineFrame {
        discarding = true
        scanned = 0
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .tooLong(limit: maxLineBytes)
    }
}
