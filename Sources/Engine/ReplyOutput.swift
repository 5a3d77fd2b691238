import NIOCore

/// The replies a connection handler has encoded but not yet sent.
///
/// Handlers encode replies into ``buffer``, hand it to the channel once it grows past a
/// threshold (``write(_:)``), and flush once per socket read (``flush(_:)``): a read of many
/// commands costs one system call to answer, however many replies it holds.
///
/// A class, not a struct: writing to the channel can call back into the handler (a
/// writability change, an error), which may add replies while a write is under way.
public final class ReplyOutput {
    /// Where replies are encoded.
    public var buffer: ByteBuffer
    /// Replies were handed to the channel but not flushed.
    private var unflushed = false

    public init(allocator: ByteBufferAllocator) {
        buffer = allocator.buffer(capacity: 1024)
    }

    /// Hands the replies so far to the channel, without flushing.
    public func write(_ context: ChannelHandlerContext) {
        guard buffer.readableBytes > 0 else { return }
        let ready = buffer
        buffer = context.channel.allocator.buffer(capacity: 1024)
        unflushed = true
        context.write(NIOAny(ready), promise: nil)
    }

    /// Sends every reply handed over so far.
    public func flush(_ context: ChannelHandlerContext) {
        write(context)
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    /// Takes out the replies not yet handed to the channel, to send them last.
    public func takeRest() -> ByteBuffer {
        let rest = buffer
        buffer = ByteBuffer()
        return rest
    }
}
