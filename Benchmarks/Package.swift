// swift-tools-version: 6.1
// Brain's micro-benchmarks (package-benchmark), a package of its own so that the main
// package's build and tests never depend on the benchmark tooling.
//   cd Benchmarks && swift package benchmark
//   swift package benchmark thresholds check   # fails when a metric regresses past its threshold
import PackageDescription

let package = Package(
    name: "brain-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "brain", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Engine", package: "brain"),
                .product(name: "LineProtocol", package: "brain"),
                .product(name: "S3Backend", package: "brain"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
