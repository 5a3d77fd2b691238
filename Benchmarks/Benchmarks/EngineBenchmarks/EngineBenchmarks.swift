import Benchmark
import Engine
import LineProtocol
import Logging
import S3Backend

/// The engine's hot paths. Each benchmark tracks wall clock and mallocs; thresholds in
/// `Thresholds/` make `swift package benchmark thresholds check` fail when an allocation
/// creeps into a hot path.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        maxDuration: .seconds(2),
        maxIterations: 1_000_000,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 2])]
    )

    let small = [UInt8](repeating: UInt8(ascii: "v"), count: 100)
    let record = Array(String(
        repeating: #"{"id":12345,"name":"player one","guild":"knights","items":["sword","shield"],"hp":100},"#,
        count: 24).prefix(2048).utf8)

    Benchmark("LZ4_compress_2_KB_JSON") { benchmark in
        var output = [UInt8](repeating: 0, count: record.count)
        for _ in benchmark.scaledIterations {
            let length = record.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { LZ4Codec.compress(source, into: $0) }
            }
            blackHole(length)
        }
    }

    Benchmark("LZ4_decompress_2_KB_JSON") { benchmark in
        let compressed = LZ4Codec.compress(record)!
        var output = [UInt8](repeating: 0, count: record.count)
        for _ in benchmark.scaledIterations {
            let ok = compressed.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { LZ4Codec.decompress(source, into: $0) }
            }
            blackHole(ok)
        }
    }

    func makeStore(maxMemory: Int = 256 << 20) -> CacheStore {
        var configuration = EngineConfiguration()
        configuration.maxMemory = maxMemory
        configuration.maxDirtyBytes = maxMemory
        configuration.shardCount = EngineConfiguration.shardCount(forMaxMemory: maxMemory)
        return CacheStore(
            configuration: configuration, backend: MemoryBackend(), metrics: Metrics(),
            logger: Logger(label: "bench"))
    }

    let keys = (0..<10_000).map { Array("user:\($0)".utf8) }

    for (name, value) in [("100_B", small), ("2_KB", record)] {
        Benchmark("set_\(name)_(hit)") { benchmark in
            let store = makeStore()
            for key in keys { _ = await store.execute(.set(key: key, value: value, encoding: .bytes, persist: false)) }
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations {
                blackHole(await store.execute(.set(key: keys[index % keys.count], value: value, encoding: .bytes, persist: false)))
            }
        }

        Benchmark("get_\(name)_(hit)") { benchmark in
            let store = makeStore()
            for key in keys { _ = await store.execute(.set(key: key, value: value, encoding: .bytes, persist: false)) }
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations {
                blackHole(await store.execute(.get(key: keys[index % keys.count])))
            }
        }
    }

    Benchmark("get_miss_(remembered_not-found)") { benchmark in
        let store = makeStore()
        for key in keys { _ = await store.execute(.get(key: key)) }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(await store.execute(.get(key: keys[index % keys.count])))
        }
    }

    Benchmark("set_2_KB_under_eviction_pressure_(8_MB)") { benchmark in
        var random = SystemRandomNumberGenerator()
        let incompressible = (0..<2048).map { _ in UInt8.random(in: 0...255, using: &random) }
        let store = makeStore(maxMemory: 8 << 20)
        // Fill, and make everything clean so it can be evicted.
        for key in keys { _ = await store.execute(.set(key: key, value: incompressible, encoding: .bytes, persist: false)) }
        _ = await store.writeBackAll(timeout: .seconds(30)) { _ in }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(await store.execute(.volatileSet(key: keys[index % keys.count], value: incompressible)))
        }
    }

    Benchmark("line_command_parse_(set_100_B)") { benchmark in
        let line = Array("set user:42 ".utf8) + small
        for _ in benchmark.scaledIterations {
            line.withUnsafeBytes { bytes in
                if case .command(let command, let at) = LineCommandParser.head(of: bytes) {
                    blackHole(try? LineCommandParser.arguments(of: command, in: bytes, at: at))
                }
            }
        }
    }

    Benchmark("ETF_encode_+_decode_{s,_Id,_Value}") { benchmark in
        let term = Term.tuple([.atom("s"), .binary(Array("user:42".utf8)), .binary(small)])
        for _ in benchmark.scaledIterations {
            let bytes = ExternalTermFormat.encode(term)
            blackHole(try? ExternalTermFormat.decode(bytes))
        }
    }

    Benchmark("SigV4_sign_S3_PUT") { benchmark in
        let signer = S3Signer(
            credentials: .init(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let date = AmzDate(secondsSince1970: 1_369_353_600)
        let key = signer.signingKey(for: date)
        let hash = S3Signer.sha256Hex(record)
        for _ in benchmark.scaledIterations {
            blackHole(signer.sign(
                method: "PUT", path: "/bucket/prefix/string/user%3A42", headers: [(name: "host", value: "127.0.0.1:9000")],
                payloadHash: hash, sendsPayloadHash: true, date: date, signingKey: key))
        }
    }
}
