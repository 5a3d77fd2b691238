/// When a connected link sends a tick and when it gives up on a silent peer: a pure state
/// machine checked once per tick interval (a quarter of the tick time, as `net_kernel`
/// does).
///
/// It reads no clock and sees no bytes: the caller counts the socket reads (any bytes
/// received, ticks and parts of unfinished frames included) and the frames written on the
/// link, and calls ``check(received:framesWritten:readerBusy:)`` once per interval.
/// - A tick is sent when nothing was written during the interval, so the peer, which drops a
///   link it hears nothing from for its own tick time, keeps hearing from us.
/// - The link is closed once nothing was read for ``silentIntervalsAllowed`` whole intervals
///   in a row plus the current one: with the default tick time of 60 s (15 s intervals) a
///   peer silent for more than 60 s is dropped within 75 s.
/// - An interval in which the link's reader was waiting for its own commands to finish does
///   not count as silence: the peer's frames are then waiting in the socket, unread.
public struct LinkTicker: Sendable, Equatable {
    /// What to do at one check.
    public struct Decision: Sendable, Equatable {
        /// Send a tick (an empty frame).
        public var sendTick: Bool
        /// Close the link: the peer has been silent too long.
        public var close: Bool
    }

    /// Whole intervals of silence tolerated before the link is closed at the next check.
    public static let silentIntervalsAllowed = 4

    private var lastReceived: UInt64
    private var lastWritten: UInt64
    private var silentIntervals = 0

    /// A ticker for a link that has received bytes in `received` socket reads and written
    /// `framesWritten` frames so far.
    public init(received: UInt64 = 0, framesWritten: UInt64 = 0) {
        lastReceived = received
        lastWritten = framesWritten
    }

    /// The decision at the end of one interval, given the link's counts now.
    public mutating func check(received: UInt64, framesWritten: UInt64, readerBusy: Bool) -> Decision {
        if received != lastReceived || readerBusy {
            silentIntervals = 0
        } else {
            silentIntervals += 1
        }
        lastReceived = received
        let close = silentIntervals > Self.silentIntervalsAllowed
        let sendTick = !close && framesWritten == lastWritten
        // The tick about to be sent counts as a write of this interval.
        lastWritten = framesWritten &+ (sendTick ? 1 : 0)
        return Decision(sendTick: sendTick, close: close)
    }
}
