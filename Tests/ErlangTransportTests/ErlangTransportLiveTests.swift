import Engine
import Foundation
import NIOCore
import NIOPosix
import XCTest

@testable import ErlangTransport

/// The transport on a real socket, registered with the machine's epmd, driven by a peer that
/// speaks the protocol byte by byte.
final class ErlangTransportLiveTests: XCTestCase {

    func testSetGetAndPersistOverALink() async throws {
        try await withNode { node in
            let replies = try await RawPeer.connect(port: node.port) { peer -> [Term] in
                try await peer.shake()
                try await peer.registeredSend(.tuple([.atom("s"), erlString("k"), .binary([1, 2, 3])]))
                try await peer.registeredSend(.tuple([.atom("p"), erlString("k")]))
                try await peer.registeredSend(.tuple([.atom("g"), .atom("true"), .binary([107]), .pid(peer.pid), .atom("null")]))
                try await peer.registeredSend(.tuple([.atom("g"), .atom("false"), erlString("none"), .pid(peer.pid), .atom("null")]))
                var replies: [Term] = []
                for _ in 0..<2 {
                    guard let (to, message) = try await peer.readSend() else { break }
                    XCTAssertEqual(to, .pid(peer.pid))
                    replies.append(message)
                }
                return replies
            }
            XCTAssertEqual(Set(replies), [.tuple([.atom("ok"), .binary([1, 2, 3])]), .atom("ko")])
            XCTAssertEqual(node.store.value("k"), StoredValue(type: .string, bytes: [1, 2, 3]))
            XCTAssertTrue(node.store.commands.contains("\(Command.persist(key: [107]))"))
            XCTAssertEqual(node.count(.s), 1)
            XCTAssertEqual(node.count(.g), 2)
            XCTAssertEqual(node.count(.p), 1)
        }
    }

    func testRequestsAndGenServerCallsAreAnsweredWithTheirTag() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                try await peer.registeredSend(.tuple([.pid(peer.pid), .integer(1), .tuple([.atom("set"), .binary([97]), .atom("v")])]))
                guard let first = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(first.message, .tuple([.integer(1), .atom("true")]))
                try await peer.registeredSend(.tuple([
                    .atom("$gen_call"), .tuple([.pid(peer.pid), .integer(2)]), .tuple([.atom("get"), .binary([97])]),
                ]))
                guard let second = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(second.message, .tuple([.integer(2), .tuple([.atom("ok"), .atom("v")])]))
                // net_adm:ping's call to net_kernel.
                try await peer.registeredSend(to: "net_kernel", .tuple([
                    .atom("$gen_call"), .tuple([.pid(peer.pid), .integer(3)]), .tuple([.atom("is_auth"), .atom(Atom(peer.name))]),
                ]))
                guard let third = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(third.message, .tuple([.integer(3), .atom("yes")]))
            }
            XCTAssertEqual(node.count(.set), 1)
            XCTAssertEqual(node.count(.get), 1)
        }
    }

    func testSignalsAreAnswered() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let ours = Term.pid(Pid(node: Atom(node.nodeName), id: 3, serial: 0, creation: 1))
                try await peer.sendControl(.tuple([.integer(1), .pid(peer.pid), ours]))
                guard let exit = try await peer.readMessage() else { return XCTFail("no answer to LINK") }
                XCTAssertEqual(exit.control, .other(operation: 3))
                try await peer.sendControl(.tuple([.integer(35), .integer(77), .pid(peer.pid), ours]))
                guard let ack = try await peer.readMessage() else { return XCTFail("no answer to UNLINK_ID") }
                XCTAssertEqual(ack.control, .other(operation: 36))
                // A monitor of the served name is accepted silently; the next answer is the get's.
                let reference = Term.reference(Reference(node: Atom(peer.name), creation: 7, ids: [1, 2, 3]))
                try await peer.sendControl(.tuple([.integer(19), .pid(peer.pid), .atom("brain"), reference]))
                try await peer.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("x"), .pid(peer.pid), .atom("null")]))
                guard let reply = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(reply.message, .atom("ko"))
            }
        }
    }

    func testWrongCookieIsRefused() async throws {
        try await withNode { node in
            let accepted = try await RawPeer.connect(port: node.port) { peer in
                let accepted = try await peer.handshake(cookie: "WRONG")
                await peer.expectClosedByServer(within: 5)
                return accepted
            }
            XCTAssertFalse(accepted)
            XCTAssertTrue(node.logs.all.contains { $0.contains("wrong_cookie") }, "\(node.logs.all)")
            XCTAssertTrue(node.transport.connectedNodes.isEmpty)
        }
    }

    func testPeerWithoutMandatoryFlagsIsNotAllowed() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                let name = Array(peer.name.utf8)
                let body = [UInt8(ascii: "N")] + bigEndian(0x4, 8) + bigEndian(7, 4) + bigEndian(UInt64(name.count), 2) + name
                try await peer.send(bigEndian(UInt64(body.count), 2) + body)
                let status = try await peer.readHandshakeMessage()
                XCTAssertEqual(status, Array("snot_allowed".utf8))
                await peer.expectClosedByServer(within: 5)
            }
        }
    }

    func testMalformedFrameClosesTheLinkButAMalformedMessageDoesNot() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // A REG_SEND whose message is not a term, and messages Brain does not understand.
                let control = ExternalTermFormat.encode(.tuple([.integer(6), .pid(peer.pid), .atom(""), .atom("brain")]))
                let body = [112] + control + [131, 255, 0]
                try await peer.send(bigEndian(UInt64(body.count), 4) + body)
                try await peer.registeredSend(.atom("garbage"))
                try await peer.registeredSend(.tuple([.atom("g"), .atom("maybe"), erlString("k"), .pid(peer.pid), .atom("null")]))
                guard let error = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(error.message, .tuple([.atom("error"), .atom("bad_command")]))
                // The link still works.
                try await peer.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("k"), .pid(peer.pid), .atom("null")]))
                guard let reply = try await peer.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(reply.message, .atom("ko"))
                // A frame without the pass-through byte closes it.
                try await peer.send([0, 0, 0, 3, 131, 106, 106])
                await peer.expectClosedByServer(within: 5)
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("malformed_frame") }, "\(node.logs.all)")
        }
    }

    func testFrameOverTheLimitClosesTheLink() async throws {
        try await withNode({ $0.maxFrameBytes = 1024 }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                try await peer.send(bigEndian(1_000_000, 4))
                await peer.expectClosedByServer(within: 5)
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("frame_too_large") }, "\(node.logs.all)")
        }
    }

    func testTicksAreSentAndASilentPeerIsDropped() async throws {
        try await withNode({ $0.tickTime = .milliseconds(400) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                let started = ContinuousClock.now
                // Say nothing: Brain ticks every 100 ms, then drops the link after 400 ms of silence.
                let message = try await peer.readMessage(seconds: 5)
                XCTAssertNil(message)
                let elapsed = ContinuousClock.now - started
                XCTAssertGreaterThanOrEqual(peer.ticks, 2)
                XCTAssertGreaterThan(elapsed, .milliseconds(400))
                XCTAssertLessThan(elapsed, .seconds(4))
            }
            XCTAssertTrue(node.logs.all.contains { $0.contains("link_silent") }, "\(node.logs.all)")
        }
    }

    func testPeerThatTicksStaysConnected() async throws {
        try await withNode({ $0.tickTime = .milliseconds(400) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                for _ in 0..<10 {
                    try await Task.sleep(for: .milliseconds(100))
                    try await peer.send(OutgoingFrame.tick)
                }
                try await peer.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("k"), .pid(peer.pid), .atom("null")]))
                guard let reply = try await peer.readSend() else { return XCTFail("the link was dropped") }
                XCTAssertEqual(reply.message, .atom("ko"))
            }
        }
    }

    func testPeerThatStopsReadingIsDropped() async throws {
        let store = FakeStore()
        _ = await store.execute(.set(key: Array("big".utf8), value: Array(repeating: 7, count: 256 * 1024), encoding: .bytes, persist: false))
        try await withNode({
            $0.tickTime = .milliseconds(400)
            $0.maxPendingBytesPerLink = 1
        }, store: store) { node in
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                // Ask for far more than the socket buffers hold, and read none of it.
                let get = OutgoingFrame.frame(
                    control: .tuple([.integer(6), .pid(peer.pid), .atom(""), .atom("brain")]),
                    message: .tuple([.atom("g"), .atom("true"), erlString("big"), .pid(peer.pid), .atom("null")]))
                for _ in 0..<200 { try await peer.send(get) }
                let dropped = try await waitUntil(seconds: 10) { node.logs.all.contains { $0.contains("link_silent") } }
                XCTAssertTrue(dropped, "the link of a peer that reads nothing was never dropped: \(node.logs.all)")
            }
        }
    }

    func testHandshakeThatStallsIsClosedAfterTheSetupTime() async throws {
        try await withNode({ $0.setupTime = .milliseconds(300) }) { node in
            try await RawPeer.connect(port: node.port) { peer in
                await peer.expectClosedByServer(within: 5)
            }
            let logged = try await waitUntil(seconds: 5) { node.logs.all.contains { $0.contains("handshake_timeout") } }
            XCTAssertTrue(logged, "\(node.logs.all)")
        }
    }

    func testSlowKeyDoesNotHoldUpOtherKeysNorOtherLinks() async throws {
        let store = FakeStore(slowKeys: [Array("slow".utf8)])
        try await withNode(store: store) { node in
            try await RawPeer.connect(port: node.port, name: "first@127.0.0.1") { first in
                try await first.shake()
                try await first.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("slow"), .pid(first.pid), .atom("null")]))
                try await first.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("fast"), .pid(first.pid), .atom("null")]))
                guard let fast = try await first.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(fast.message, .atom("ko"))
                try await RawPeer.connect(port: node.port, name: "second@127.0.0.1") { second in
                    try await second.shake()
                    try await second.registeredSend(.tuple([.atom("s"), erlString("other"), .binary([1])]))
                    try await second.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("other"), .pid(second.pid), .atom("null")]))
                    guard let reply = try await second.readSend() else { return XCTFail("no reply") }
                    XCTAssertEqual(reply.message, .tuple([.atom("ok"), .binary([1])]))
                }
                store.release()
                guard let slow = try await first.readSend() else { return XCTFail("no reply") }
                XCTAssertEqual(slow.message, .atom("ko"))
            }
        }
    }

    func testReplyGoesOverTheLinkOfThePidsNode() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port, name: "listener@127.0.0.1") { listener in
                try await listener.shake()
                let listenerPid = listener.pid
                try await RawPeer.connect(port: node.port, name: "asker@127.0.0.1") { asker in
                    try await asker.shake()
                    try await asker.registeredSend(.tuple([.atom("s"), erlString("k"), .binary([9])]))
                    try await asker.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("k"), .pid(listenerPid), .atom("null")]))
                }
                guard let reply = try await listener.readSend() else { return XCTFail("no reply on the listener's link") }
                XCTAssertEqual(reply.to, .pid(listenerPid))
                XCTAssertEqual(reply.message, .tuple([.atom("ok"), .binary([9])]))
            }
        }
    }

    func testReconnectUnderTheSameNameRetiresTheOldLink() async throws {
        try await withNode { node in
            try await RawPeer.connect(port: node.port, name: "peb_client_1@127.0.0.1") { old in
                try await old.shake()
                try await RawPeer.connect(port: node.port, name: "peb_client_1@127.0.0.1") { new in
                    try await new.shake()
                    await old.expectClosedByServer(within: 5)
                    try await new.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("k"), .pid(new.pid), .atom("null")]))
                    guard let reply = try await new.readSend() else { return XCTFail("no reply on the new link") }
                    XCTAssertEqual(reply.message, .atom("ko"))
                }
            }
        }
    }

    func testShutdownClosesLinksAndUnregisters() async throws {
        let name = uniqueNodeName()
        try await withNode({ $0.nodeName = name }) { node in
            let registered = try await epmdPort(of: name)
            XCTAssertEqual(registered, node.port)
            try await RawPeer.connect(port: node.port) { peer in
                try await peer.shake()
                await node.group.triggerGracefulShutdown()
                await peer.expectClosedByServer(within: 5)
            }
        }
        // epmd forgets the name once it sees the registration's connection closed.
        var unregistered = false
        for _ in 0..<250 where !unregistered {
            unregistered = try await epmdPort(of: name) == nil
            if !unregistered { try await Task.sleep(for: .milliseconds(20)) }
        }
        XCTAssertTrue(unregistered, "epmd still knows \(name) 5 s after shutdown")
    }

    func testNameAlreadyRegisteredIsAStartUpError() async throws {
        let name = uniqueNodeName()
        try await withNode({ $0.nodeName = name }) { _ in
            let second = ErlangTransport(
                configuration: ErlangTransportConfiguration(nodeName: name, cookie: "C"), store: FakeStore(),
                metrics: Metrics(), logger: CapturedLogs().logger)
            do {
                try await second.run()
                XCTFail("a second node of the same name started")
            } catch let error as ErlangTransportError {
                XCTAssertEqual(error.code, .nameInUse)
                XCTAssertTrue(error.message.contains(EPMDProtocol.aliveName(of: name)), error.message)
            }
            do {
                _ = try await second.boundPort()
                XCTFail("boundPort succeeded")
            } catch {
                XCTAssertEqual((error as? ErlangTransportError)?.code, .nameInUse)
            }
        }
    }

    func testConnectionsBeyondTheLimitAreClosed() async throws {
        try await withNode({ $0.maxConnections = 1 }) { node in
            try await RawPeer.connect(port: node.port, name: "first@127.0.0.1") { first in
                try await first.shake()
                try await RawPeer.connect(port: node.port, name: "second@127.0.0.1") { second in
                    await second.expectClosedByServer(within: 5)
                }
                try await first.registeredSend(.tuple([.atom("g"), .atom("true"), erlString("k"), .pid(first.pid), .atom("null")]))
                guard let reply = try await first.readSend() else { return XCTFail("the first link was dropped") }
                XCTAssertEqual(reply.message, .atom("ko"))
            }
        }
    }

    // MARK: epmd

    func testStartsEPMDWhenNoneAnswers() async throws {
        guard executable("epmd") != nil else { throw XCTSkip("epmd is not on PATH") }
        let epmd = try await freePort()
        let name = uniqueNodeName()
        defer { _ = try? runProcess(executable("epmd")!, ["-port", String(epmd), "-kill"], seconds: 10) }
        try await withNode({
            $0.nodeName = name
            $0.epmdPort = epmd
        }) { node in
            let registered = try await epmdPort(of: name, epmd: epmd)
            XCTAssertEqual(registered, node.port)
            XCTAssertTrue(node.logs.all.contains { $0.contains("starting one with `epmd -daemon`") }, "\(node.logs.all)")
        }
    }

    func testWithoutEPMDStartUpFailsSayingHowToStartIt() async throws {
        let epmd = try await freePort()
        let transport = ErlangTransport(
            configuration: ErlangTransportConfiguration(nodeName: uniqueNodeName(), cookie: "C", epmdPort: epmd, startEPMD: false),
            store: FakeStore(), metrics: Metrics(), logger: CapturedLogs().logger)
        do {
            try await transport.run()
            XCTFail("the node started without epmd")
        } catch let error as ErlangTransportError {
            XCTAssertEqual(error.code, .epmdUnavailable)
            XCTAssertTrue(error.message.contains("epmd -daemon"), error.message)
            XCTAssertTrue(error.message.contains("127.0.0.1:\(epmd)"), error.message)
        }
    }

    // MARK: A real erl

    func testRealErlClient() async throws {
        guard let erl = executable("erl") else { throw XCTSkip("erl is not on PATH") }
        try await withNode(seconds: 60) { node in
            let target = "{brain, '\(node.nodeName)'}"
            let script = """
                T = \(target), N = '\(node.nodeName)',
                Out = fun(Label, Value) -> io:format("~s ~w~n", [Label, Value]) end,
                Out("ping", net_adm:ping(N)),
                Value = {hp, 100, [sword, <<"shield">>], #{gold => 1.5}, 123456789012345678901234567890, self()},
                T ! {s, "player:1", Value},
                T ! {s, <<"bin">>, <<"bytes">>},
                T ! {s, "str", "text"},
                Get = fun(Id) -> T ! {g, true, Id, self(), null}, receive R -> R after 5000 -> timeout end end,
                Out("term", Get(<<"player:1">>) =:= {ok, Value}),
                Out("bin", Get("bin")),
                Out("str", Get("str")),
                Out("missing", Get("missing")),
                T ! {p, "str"},
                Out("call", gen_server:call(T, {get, <<"str">>})),
                Out("hset", gen_server:call(T, {hset, <<"h">>, <<"f">>, <<"v">>})),
                Out("hget", gen_server:call(T, {hget, <<"h">>})),
                halt().
                """
            let output = try runProcess(
                erl, ["-name", "erltest\(UInt32.random(in: 0...UInt32.max))@127.0.0.1", "-setcookie", "C", "-noshell", "-eval", script],
                seconds: 40)
            XCTAssertEqual(
                output.split(separator: "\n").map(String.init),
                [
                    "ping pong", "term true", "bin {ok,<<98,121,116,101,115>>}", "str {ok,[116,101,120,116]}", "missing ko",
                    "call {ok,[116,101,120,116]}", "hset true", "hget {ok,#{<<102>> => <<118>>}}",
                ], output)
            XCTAssertEqual(node.store.value("bin"), StoredValue(type: .string, bytes: Array("bytes".utf8)))
            XCTAssertEqual(node.store.value("player:1")?.type, .term)
        }
    }

    func testRealErlWithAnotherCookieGetsPang() async throws {
        guard let erl = executable("erl") else { throw XCTSkip("erl is not on PATH") }
        try await withNode(seconds: 60) { node in
            let output = try runProcess(
                erl,
                ["-name", "erltest\(UInt32.random(in: 0...UInt32.max))@127.0.0.1", "-setcookie", "OTHER", "-noshell", "-eval",
                 "io:format(\"~w~n\", [net_adm:ping('\(node.nodeName)')]), halt()."],
                seconds: 40)
            XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "pang")
        }
    }
}

/// The Erlang string `text`.
func erlString(_ text: String) -> Term { .string(Array(text.utf8)) }

/// The path of `name` on `PATH`, if it is there.
func executable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a program to its end and returns its standard output; kills it past `seconds`.
func runProcess(_ path: String, _ arguments: [String], seconds: Double) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    let data = output.fileHandleForReading.readDataToEndOfFile()
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        throw TimeoutError(description: "\(path) did not finish within \(seconds) s")
    }
    return String(decoding: data, as: UTF8.self)
}

/// The port epmd gives for the node `name`, or nil when epmd does not know it
/// (`PORT_PLEASE2_REQ`).
func epmdPort(of name: String, epmd: Int = EPMDProtocol.defaultPort) async throws -> Int? {
    let alive = Array(EPMDProtocol.aliveName(of: name).utf8)
    let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: epmd) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let reply: [UInt8] = try await client.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(bytes: bigEndian(UInt64(alive.count + 1), 2) + [122] + alive))
        var bytes: [UInt8] = []
        for try await buffer in inbound { bytes.append(contentsOf: buffer.readableBytesView) }
        return bytes
    }
    guard reply.count >= 4, reply[0] == 119, reply[1] == 0 else { return nil }
    return Int(reply[2]) << 8 | Int(reply[3])
}

/// A TCP port nothing listens on right now.
func freePort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    try await channel.close()
    return port
}

/// Polls `condition` every 20 ms until it holds (true) or `seconds` pass (false).
func waitUntil(seconds: Double, _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}
