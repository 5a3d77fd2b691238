import NIOCore

/// One frame read from a distribution connection.
public enum DistributionFrame: Sendable, Equatable {
    /// A handshake message: the body of a frame with a 2-byte length.
    case handshake(ByteBuffer)
    /// An empty frame of a connected link: the peer is alive.
    case tick
    /// A frame of a connected link: the body of a frame with a 4-byte length.
    case data(ByteBuffer)
}

/// Splits a distribution connection into frames: 2-byte-length handshake messages, then
/// 4-byte-length frames once the handshake is over.
///
/// The decoder switches framing itself, right after the peer's challenge reply (`'r'`, the
/// last handshake message an initiator sends), so that bytes the peer sends right behind
/// it, in the same read, are framed correctly; no buffered byte is lost or re-read at the
/// switch. Lengths are checked before anything is buffered for the frame: a handshake
/// message over `maxHandshakeBytes` or a frame over `maxFrameBytes` is an
/// ``ErlangTransportError`` (`frame_too_large`), which closes the connection.
public struct DistributionFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = DistributionFrame

    private enum Phase {
        case handshake
        case connected
    }

    private var phase: Phase
    private let maxFrameBytes: Int
    private let maxHandshakeBytes: Int

    /// A decoder for a fresh connection, starting in the handshake.
    ///
    /// - Parameters:
    ///   - maxFrameBytes: the longest frame body accepted once connected.
    ///   - maxHandshakeBytes: the longest handshake message accepted (at most 65535, the
    ///     most a 2-byte length can say).
    ///   - connected: true to start with 4-byte framing, for a connection whose handshake
    ///     is already over.
    public init(maxFrameBytes: Int, maxHandshakeBytes: Int = 2048, connected: Bool = false) {
        self.maxFrameBytes = maxFrameBytes
        self.maxHandshakeBytes = maxHandshakeBytes
        self.phase = connected ? .connected : .handshake
    }

    /// Yields the next frame when all of it is buffered.
    ///
    /// - Throws: ``ErlangTransportError`` (`frame_too_large`) as soon as a length over the
    ///   limit is read.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch phase {
        case .handshake:
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
            guard Int(length) <= maxHandshakeBytes else {
                throw ErlangTransportError(
                    .frameTooLarge, "handshake message of \(length) bytes is over the \(maxHandshakeBytes)-byte limit")
            }
            guard buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            let message = buffer.readSlice(length: Int(length))!
            if message.getInteger(at: message.readerIndex, as: UInt8.self) == UInt8(ascii: "r") {
                phase = .connected
            }
            context.fireChannelRead(wrapInboundOut(.handshake(message)))
            return .continue
        case .connected:
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
            if length == 0 {
                buffer.moveReaderIndex(forwardBy: 4)
                context.fireChannelRead(wrapInboundOut(.tick))
                return .continue
            }
            guard UInt64(length) <= UInt64(maxFrameBytes) else {
                throw ErlangTransportError(
                    .frameTooLarge, "frame of \(length) bytes is over the \(maxFrameBytes)-byte limit")
            }
            guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 4)
            context.fireChannelRead(wrapInboundOut(.data(buffer.readSlice(length: Int(length))!)))
            return .continue
        }
    }

    /// Yields the complete frames left when the connection ends; a partial one is dropped.
    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
