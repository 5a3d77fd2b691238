import ArgumentParser
import Foundation

extension WireProtocol: ExpressibleByArgument {}
extension ValueKind: ExpressibleByArgument {}

/// `brain bench`: the load generator. It drives a Brain node, memcached or Redis with the
/// same keys and values and reports ops/s and latency percentiles.
struct Bench: AsyncParsableCommand {
    /// The workloads `--workload` names.
    enum WorkloadName: String, CaseIterable, ExpressibleByArgument, Sendable {
        /// The get/set mix.
        case mix
        /// The session replay.
        case sessions
    }

    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load a Brain node, memcached or Redis with gets and sets; report ops/s and latency.",
        discussion: """
            The mix (default): each connection sends gets and sets of keys drawn uniformly from \
            --keys, in the --ratio get:set, keeping --pipeline requests in flight, for --duration \
            or --requests. --warmup sets every key once first. The same --seed gives every \
            protocol the same keys, operations and values.

            Sessions (--workload sessions): --users users arrive evenly over --ramp; each reads \
            its record (key:N, loaded beforehand), then --updates times reads it and writes it \
            back, evenly over --session-time, then goes idle.

            Latencies are from the request's send to its reply, in microseconds; error replies \
            are counted by code and kept out of them. Exit status: 0 after a run (even with \
            error replies), 1 when it failed (connection, protocol, stall), 2 for bad options.
            """
    )

    @Option(help: "The server's address.") var host = "127.0.0.1"
    @Option(help: "The server's port (default: 3697 brain, 11211 memcached, 6379 redis).") var port: Int?
    @Option(name: .customLong("protocol"), help: "brain (line protocol), memcached (text protocol) or redis (RESP).")
    var wire: WireProtocol = .brain
    @Option(help: "Send 'auth <secret>' first on each connection (brain only; default: the BRAIN_SECRET variable).")
    var secret: String?
    @Option(help: "Connections to open.") var connections = 50
    @Option(help: "Requests in flight per connection.") var pipeline = 1
    @Option(help: "Load-generator threads.") var threads = 1
    @Option(help: "mix or sessions.") var workload: WorkloadName = .mix
    @Option(help: "Key space: keys key:00000000 ... (default 100000; mix only).") var keys: Int?
    @Option(help: "Value length in bytes, or a range MIN-MAX (e.g. 100, 2kb, 1kb-2kb).") var valueSize = "100"
    @Option(help: "random (incompressible letters and digits) or json (user records).") var valueKind: ValueKind = .random
    @Option(help: "get:set ratio (default 9:1; mix only).") var ratio: String?
    @Option(help: "How long the mix runs (default 10s).") var duration: String?
    @Option(help: "How many mix requests in all, instead of --duration (0 with --warmup: load only).") var requests: Int?
    @Flag(help: "Set every key once before measuring (mix only).") var warmup = false
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Sessions: how many users (default 10000).") var users: Int?
    @Option(help: "Sessions: read-then-write updates per user after the first read (default 20).") var updates: Int?
    @Option(help: "Sessions: from a user's first read to its last update (default 6s).") var sessionTime: String?
    @Option(help: "Sessions: from the first user's arrival to the last one's (default 30s).") var ramp: String?
    @Option(help: "Fail when no reply comes for this long with requests in flight.") var stallLimit = "10s"
    @Flag(help: "Print the result as one JSON object.") var json = false

    func run() async throws {
        let settings: BenchSettings
        do {
            settings = try self.settings(environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("brain bench: \(error)\n".utf8))
            throw ExitCode(2)
        }
        do {
            let result = try await BenchRunner.run(settings)
            print(json ? result.json() : result.text(), terminator: "")
        } catch {
            FileHandle.standardError.write(Data("brain bench: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The run these options describe.
    /// - Throws: ``BenchError`` `invalid_option` naming the option at fault.
    func settings(environment: [String: String] = [:]) throws(BenchError) -> BenchSettings {
        let port = port ?? wire.defaultPort
        guard (1...65535).contains(port) else { throw invalid("--port \(port) is not a port: use 1 to 65535") }
        guard (1...BenchSettings.maximumConnections).contains(connections) else {
            throw invalid("--connections \(connections) is out of range: use 1 to \(BenchSettings.maximumConnections)")
        }
        guard (1...BenchSettings.maximumPipeline).contains(pipeline) else {
            throw invalid("--pipeline \(pipeline) is out of range: use 1 to \(BenchSettings.maximumPipeline)")
        }
        guard threads >= 1, threads <= min(connections, 64) else {
            throw invalid("--threads \(threads) is out of range: use 1 to \(min(connections, 64)) (at most one per connection)")
        }
        let sizes = try BenchSettings.parseValueSize(valueSize)
        if valueKind == .json, sizes.lowerBound < ValuePool.minimumJSONSize {
            throw invalid("--value-kind json needs --value-size of at least \(ValuePool.minimumJSONSize) bytes")
        }
        let secret = secret ?? environment["BRAIN_SECRET"]
        if self.secret != nil, wire != .brain {
            throw invalid("--secret is for --protocol brain only")
        }
        let stall = try BenchSettings.parseDuration(stallLimit, option: "--stall-limit")
        guard stall > 0 else { throw invalid("--stall-limit must be longer than 0") }

        let keyCount: Int
        let plan: BenchSettings.Workload
        switch workload {
        case .mix:
            for (name, given) in [("--users", users != nil), ("--updates", updates != nil),
                                  ("--session-time", sessionTime != nil), ("--ramp", ramp != nil)] where given {
                throw invalid("\(name) is for --workload sessions")
            }
            keyCount = keys ?? 100_000
            guard (1...BenchSettings.maximumKeys).contains(keyCount) else {
                throw invalid("--keys \(keyCount) is out of range: use 1 to \(BenchSettings.maximumKeys)")
            }
            let ratio = try BenchSettings.parseRatio(self.ratio ?? "9:1")
            let stop: BenchSettings.Stop
            switch (duration, requests) {
            case (.some, .some):
                throw invalid("give --duration or --requests, not both")
            case (.some(let text), nil):
                let nanoseconds = try BenchSettings.parseDuration(text, option: "--duration")
                guard nanoseconds > 0 else { throw invalid("--duration must be longer than 0") }
                stop = .duration(nanoseconds)
            case (nil, .some(let count)):
                guard count >= 0 else { throw invalid("--requests \(count) is negative") }
                guard count > 0 || warmup else { throw invalid("--requests 0 only makes sense with --warmup (load only)") }
                stop = .requests(count)
            case (nil, nil):
                stop = .duration(10_000_000_000)
            }
            plan = .mix(ratio: ratio, stop: stop)
        case .sessions:
            for (name, given) in [("--keys", keys != nil), ("--ratio", ratio != nil), ("--duration", duration != nil),
                                  ("--requests", requests != nil)] where given {
                throw invalid("\(name) is for --workload mix (sessions use --users, --updates, --session-time, --ramp)")
            }
            guard !warmup else {
                throw invalid("--warmup would make every session's first read warm: load the records in a separate run (--workload mix --warmup --requests 0)")
            }
            let userCount = users ?? 10_000
            guard (1...BenchSettings.maximumKeys).contains(userCount) else {
                throw invalid("--users \(userCount) is out of range: use 1 to \(BenchSettings.maximumKeys)")
            }
            let updateCount = updates ?? 20
            guard (0...10_000).contains(updateCount) else { throw invalid("--updates \(updateCount) is out of range: use 0 to 10000") }
            let session = try BenchSettings.parseDuration(sessionTime ?? "6s", option: "--session-time")
            let rampTime = try BenchSettings.parseDuration(ramp ?? "30s", option: "--ramp")
            keyCount = userCount
            plan = .sessions(SessionPlan(users: userCount, updates: updateCount, sessionTime: session, ramp: rampTime))
        }
        return BenchSettings(
            host: host, port: port, wire: wire, secret: wire == .brain ? secret : nil, connections: connections,
            pipeline: pipeline, threads: threads, keys: keyCount, valueSizes: sizes, valueKind: valueKind,
            workload: plan, warmup: warmup, seed: seed, stallLimit: stall)
    }

    private func invalid(_ message: String) -> BenchError {
        BenchError(.invalidOption, message)
    }
}

extension WireProtocol {
    /// The port each server listens on unless told otherwise.
    var defaultPort: Int {
        switch self {
        case .brain: 3697
        case .memcached: 11211
        case .redis: 6379
        }
    }
}
