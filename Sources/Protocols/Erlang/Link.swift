import NIOCore
import Synchronization

/// A connected link: one peer node after its handshake, and the connection that carries it.
///
/// Its own connection handler writes its replies; the handlers of other links write to it
/// only through ``writeIfWritable(_:)``, which never waits.
final class Link: Sendable {
    /// The node at the other end.
    let peer: DistributionHandshake.Peer
    /// The connection.
    let channel: any Channel
    private let writeCount = Atomic<UInt64>(0)

    init(peer: DistributionHandshake.Peer, channel: any Channel) {
        self.peer = peer
        self.channel = channel
    }

    /// Frames written so far, ticks included.
    var framesWritten: UInt64 { writeCount.load(ordering: .relaxed) }

    /// Counts one frame written by the link's own handler.
    func noteWritten() {
        writeCount.add(1, ordering: .relaxed)
    }

    /// Writes one frame without waiting, if the connection can take it now; returns false
    /// (and writes nothing) when the peer is behind. For replies written by the handlers of
    /// other links, which must not wait on this one.
    func writeIfWritable(_ frame: [UInt8]) -> Bool {
        guard channel.isActive, channel.isWritable else { return false }
        writeCount.add(1, ordering: .relaxed)
        channel.writeAndFlush(ByteBuffer(bytes: frame), promise: nil)
        return true
    }

    /// Closes the connection now.
    func close() {
        channel.close(promise: nil)
    }
}

/// The connected links by peer node name: where a reply to a pid goes.
final class LinkRegistry: Sendable {
    private let links = Mutex<[String: Link]>([:])

    /// Makes `link` the link of its peer's name; returns the link it replaces, if any (a
    /// peer that reconnected before its old connection was seen closed).
    func register(_ link: Link) -> Link? {
        links.withLock { $0.updateValue(link, forKey: link.peer.name) }
    }

    /// Forgets `link`, unless another link of the same name has replaced it.
    func remove(_ link: Link) {
        links.withLock { links in
            if links[link.peer.name] === link { links[link.peer.name] = nil }
        }
    }

    /// The link to the node `name`.
    func link(named name: String) -> Link? {
        links.withLock { $0[name] }
    }

    /// The names of the connected nodes.
    var names: [String] {
        links.withLock { Array($0.keys) }
    }
}
