import Foundation
import Histogram

/// Latency percentiles of one kind of request, in microseconds.
struct LatencySummary: Codable, Equatable, Sendable {
    /// Successful replies measured.
    var count: Int
    /// The median.
    var p50: Double
    /// The 90th percentile.
    var p90: Double
    /// The 99th percentile.
    var p99: Double
    /// The 99.9th percentile.
    var p999: Double
    /// The longest.
    var max: Double
    /// The arithmetic mean.
    var mean: Double

    /// The summary of `histogram` (nanoseconds), `nil` when it is empty.
    init?(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else { return nil }
        func micros(_ nanoseconds: UInt64) -> Double { (Double(nanoseconds) / 100).rounded() / 10 }
        count = Int(histogram.totalCount)
        p50 = micros(histogram.valueAtPercentile(50))
        p90 = micros(histogram.valueAtPercentile(90))
        p99 = micros(histogram.valueAtPercentile(99))
        p999 = micros(histogram.valueAtPercentile(99.9))
        max = micros(histogram.max)
        mean = (histogram.mean / 100).rounded() / 10
    }
}

/// What one phase (warm-up or measured) of a run gave.
struct PhaseResult: Codable, Equatable, Sendable {
    /// From the phase's start until its last reply, in seconds.
    var seconds: Double
    /// Successful replies.
    var replies: Int
    /// Successful replies per second.
    var opsPerSec: Double
    /// Error replies in all.
    var errors: Int
    /// Error replies by code.
    var errorCodes: [String: Int]
    /// `get` replies with a value.
    var hits: Int
    /// `get` replies without one.
    var misses: Int
    /// Latencies by kind (`get`, `set`, `cold_get`, `warm_get`) and of every kind (`all`).
    var latencyUs: [String: LatencySummary]
    /// Sessions only: how late requests left against their schedule.
    var lagUs: LatencySummary?

    /// The result of `stats`, measured over `seconds`.
    init(_ stats: BenchStats, seconds: Double) {
        self.seconds = (seconds * 1000).rounded() / 1000
        replies = stats.successes
        opsPerSec = seconds > 0 ? (Double(replies) / seconds).rounded() : 0
        errors = stats.errorCount
        errorCodes = stats.errors
        hits = stats.hits
        misses = stats.misses
        var latencies: [String: LatencySummary] = [:]
        for kind in OpKind.allCases {
            if let summary = LatencySummary(stats.latency(kind)) { latencies[kind.name] = summary }
        }
        if let all = LatencySummary(stats.allLatencies) { latencies["all"] = all }
        latencyUs = latencies
        lagUs = LatencySummary(stats.lag)
    }
}

/// Everything a run reports: its settings, the warm-up, the measured phase, and the load
/// generator's own CPU use.
///
/// The settings are echoed so that a saved result says what produced it; in JSON the keys
/// are snake_case (`protocol_name`, `ops_per_sec`, `latency_us`, ...).
struct BenchResult: Codable, Equatable, Sendable {
    /// `brain`, `memcached` or `redis`.
    var protocolName: String
    /// The server's host.
    var host: String
    /// The server's port.
    var port: Int
    /// Connections opened.
    var connections: Int
    /// Requests in flight per connection at most.
    var pipeline: Int
    /// Load-generator threads.
    var threads: Int
    /// `mix` or `sessions`.
    var workload: String
    /// The key space (the users, for sessions).
    var keys: Int
    /// The value length, or `MIN-MAX`.
    var valueSize: String
    /// `random` or `json`.
    var valueKind: String
    /// The mix's `get:set` ratio.
    var ratio: String?
    /// Sessions: users.
    var users: Int?
    /// Sessions: updates per user.
    var updates: Int?
    /// Sessions: a session's length in seconds.
    var sessionSeconds: Double?
    /// Sessions: the arrival ramp in seconds.
    var rampSeconds: Double?
    /// The seed of every random choice.
    var seed: UInt64
    /// The warm-up, when there was one.
    var warmup: PhaseResult?
    /// The measured phase.
    var measured: PhaseResult
    /// CPU seconds (user + system) the load generator used in the measured phase.
    var cpuSeconds: Double
    /// The machine's 1, 5 and 15-minute load averages when the run started.
    var loadAverage: [Double]

    /// The result of a run of `settings`.
    init(settings: BenchSettings, warmup: PhaseResult?, measured: PhaseResult, cpuSeconds: Double, loadAverage: [Double]) {
        protocolName = settings.wire.rawValue
        host = settings.host
        port = settings.port
        connections = settings.connections
        pipeline = settings.pipeline
        threads = settings.threads
        keys = settings.keys
        let sizes = settings.valueSizes
        valueSize = sizes.count == 1 ? "\(sizes.lowerBound)" : "\(sizes.lowerBound)-\(sizes.upperBound)"
        valueKind = settings.valueKind.rawValue
        seed = settings.seed
        switch settings.workload {
        case .mix(let ratio, _):
            workload = "mix"
            self.ratio = ratio.description
        case .sessions(let plan):
            workload = "sessions"
            users = plan.users
            updates = plan.updates
            sessionSeconds = Double(plan.sessionTime) / 1e9
            rampSeconds = Double(plan.ramp) / 1e9
        }
        self.warmup = warmup
        self.measured = measured
        self.cpuSeconds = (cpuSeconds * 100).rounded() / 100
        self.loadAverage = loadAverage.map { ($0 * 100).rounded() / 100 }
    }

    /// The result as one line of JSON (snake_case keys, sorted), ended by a newline.
    func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The result for people: what ran, then a table of latencies.
    func text() -> String {
        var lines: [String] = []
        let plural = threads == 1 ? "thread" : "threads"
        lines.append("brain bench: \(protocolName) protocol at \(host):\(port), \(connections) connections x pipeline \(pipeline), \(threads) \(plural)")
        let values = "\(valueSize)-byte \(valueKind) values"
        if workload == "mix" {
            lines.append("mix: get:set \(ratio ?? ""), \(keys) keys, \(values), seed \(seed)")
        } else {
            lines.append("sessions: \(users ?? 0) users arriving over \(Self.number(rampSeconds ?? 0, 1)) s, each 1 read then \(updates ?? 0) read+write updates over \(Self.number(sessionSeconds ?? 0, 1)) s, \(values), seed \(seed)")
        }
        if let warmup {
            lines.append("warm-up: \(warmup.replies) sets in \(Self.number(warmup.seconds, 2)) s (\(Self.number(warmup.opsPerSec, 0)) ops/s), \(Self.errorsText(warmup))")
        }
        if measured.replies + measured.errors > 0 {
            var summary = "\(Self.number(measured.opsPerSec, 0)) ops/s: \(measured.replies) replies in \(Self.number(measured.seconds, 2)) s, \(Self.errorsText(measured))"
            if measured.hits + measured.misses > 0 {
                let ratio = Double(measured.hits) / Double(measured.hits + measured.misses) * 100
                summary += ", gets \(Self.number(ratio, 1))% hits"
            }
            lines.append(summary)
            lines.append(Self.row(["latency (us)", "count", "p50", "p90", "p99", "p99.9", "max"]))
            for name in ["get", "set", "cold_get", "warm_get", "all"] {
                guard let latency = measured.latencyUs[name] else { continue }
                lines.append(Self.row([name, "\(latency.count)"] + [latency.p50, latency.p90, latency.p99, latency.p999, latency.max].map { Self.number($0, 1) }))
            }
            if let lag = measured.lagUs {
                lines.append(Self.row(["schedule lag", "\(lag.count)"] + [lag.p50, lag.p90, lag.p99, lag.p999, lag.max].map { Self.number($0, 1) }))
            }
        }
        let load = loadAverage.isEmpty ? "unknown" : loadAverage.map { Self.number($0, 2) }.joined(separator: " ")
        lines.append("load generator CPU: \(Self.number(cpuSeconds, 2)) s; load average at start: \(load)")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func errorsText(_ phase: PhaseResult) -> String {
        guard phase.errors > 0 else { return "0 errors" }
        let codes = phase.errorCodes.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }
        return "\(phase.errors) errors (\(codes.joined(separator: ", ")))"
    }

    private static func row(_ cells: [String]) -> String {
        let widths = [14, 10, 10, 10, 10, 10, 10]
        return zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }

    private static func number(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }
}
