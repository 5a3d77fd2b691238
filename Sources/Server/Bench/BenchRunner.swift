#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Carries out a ``BenchSettings``: opens the connections, runs the warm-up and the measured
/// phase on the load-generator threads, and gathers a ``BenchResult``.
enum BenchRunner {
    /// Runs the benchmark `settings` describes.
    /// - Throws: ``BenchError`` when a connection cannot be opened or breaks, the server
    ///   sends something that is no reply, or the server stalls.
    static func run(_ settings: BenchSettings) async throws(BenchError) -> BenchResult {
        let loadAverage = Self.loadAverage()
        let values = ValuePool(kind: settings.valueKind, sizes: settings.valueSizes, seed: settings.seed)
        let encoder = RequestEncoder(wire: settings.wire, keys: KeyFormat(keyCount: settings.keys), values: values)
        let sockets = try await onThread {
            () throws(BenchError) -> [CInt] in
            try BenchConnector.open(count: settings.connections, host: settings.host, port: settings.port, secret: settings.secret)
        }
        defer { for fd in sockets { close(fd) } }
        let shares = (0..<settings.threads).map { thread in
            Array(Swift.stride(from: thread, to: settings.connections, by: settings.threads))
        }

        var warmup: PhaseResult?
        if settings.warmup {
            let start = BenchClock.now()
            let stats = try await runPhase(settings, sockets: sockets, shares: shares) { thread in
                PreloadWorkload(
                    encoder: encoder, keys: settings.keys, connections: settings.connections, connectionIndexes: shares[thread])
            }
            warmup = PhaseResult(stats, seconds: Double(BenchClock.now() - start) / 1e9)
        }

        let cpuBefore = Self.cpuSeconds()
        let start = BenchClock.now()
        let stats: BenchStats
        switch settings.workload {
        case .mix(let ratio, let stop):
            if case .requests(0) = stop {
                stats = BenchStats()
                break
            }
            let requestShares = Self.split(stop, connections: settings.connections, shares: shares)
            stats = try await runPhase(settings, sockets: sockets, shares: shares) { thread in
                let limit: MixStop
                switch stop {
                case .duration(let nanoseconds): limit = .deadline(start + nanoseconds)
                case .requests: limit = .requests(requestShares[thread])
                }
                return MixWorkload(
                    encoder: encoder, keys: settings.keys, ratio: (ratio.gets, ratio.sets), stop: limit,
                    seed: settings.seed, connectionIndexes: shares[thread])
            }
        case .sessions(let plan):
            stats = try await runPhase(settings, sockets: sockets, shares: shares) { thread in
                SessionWorkload(
                    encoder: encoder, plan: plan, start: start, seed: settings.seed,
                    connections: settings.connections, connectionIndexes: shares[thread])
            }
        }
        let seconds = Double(BenchClock.now() - start) / 1e9
        return BenchResult(
            settings: settings, warmup: warmup, measured: PhaseResult(stats, seconds: seconds),
            cpuSeconds: Self.cpuSeconds() - cpuBefore, loadAverage: loadAverage)
    }

    /// Splits the requests of a `.requests` stop between the threads, in proportion to their
    /// connections.
    static func split(_ stop: BenchSettings.Stop, connections: Int, shares: [[Int]]) -> [Int] {
        guard case .requests(let total) = stop else { return shares.map { _ in 0 } }
        var given = 0
        var result: [Int] = []
        var connectionsSoFar = 0
        for share in shares {
            connectionsSoFar += share.count
            let upTo = total * connectionsSoFar / connections
            result.append(upTo - given)
            given = upTo
        }
        return result
    }

    /// Runs one phase: a ``LoadWorker`` per thread over its share of the sockets, each with the
    /// workload `make` builds for that thread; merges what they measured.
    private static func runPhase<W: BenchWorkload>(
        _ settings: BenchSettings, sockets: [CInt], shares: [[Int]], make: @escaping @Sendable (Int) -> W
    ) async throws(BenchError) -> BenchStats {
        let outcomes = await withTaskGroup(of: Result<BenchStats, BenchError>.self) { group in
            for (thread, share) in shares.enumerated() {
                let shareSockets = share.map { sockets[$0] }
                group.addTask {
                    await onThreadResult {
                        () throws(BenchError) -> BenchStats in
                        var worker = LoadWorker(
                            workload: make(thread), sockets: shareSockets, indexes: share, wire: settings.wire,
                            pipeline: settings.pipeline, stallLimit: settings.stallLimit)
                        return try worker.run()
                    }
                }
            }
            var outcomes: [Result<BenchStats, BenchError>] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var merged = BenchStats()
        for outcome in outcomes {
            switch outcome {
            case .success(let stats): merged.merge(stats)
            case .failure(let error): throw error
            }
        }
        return merged
    }

    /// Runs `body` on a thread of its own: it blocks on sockets and must not hold up Swift's
    /// cooperative thread pool.
    private static func onThread<R: Sendable>(_ body: @escaping @Sendable () throws(BenchError) -> R) async throws(BenchError) -> R {
        try await onThreadResult(body).get()
    }

    private static func onThreadResult<R: Sendable>(_ body: @escaping @Sendable () throws(BenchError) -> R) async -> Result<R, BenchError> {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                do throws(BenchError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.name = "brain-bench"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// The CPU time this process has used, user and system, in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF_WHO, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// The 1, 5 and 15-minute load averages, or an empty array where unknown.
    static func loadAverage() -> [Double] {
        var loads = [Double](repeating: 0, count: 3)
        let count = getloadavg(&loads, 3)
        return count == 3 ? loads : []
    }
}

#if canImport(Glibc)
private let RUSAGE_SELF_WHO = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
private let RUSAGE_SELF_WHO = RUSAGE_SELF
#endif
