// swift-tools-version: 6.1
// Brain: a distributed, in-memory, write-back cache in front of Amazon S3.
// The layout is the architecture (see docs/architecture.md): Engine at the core, backends and
// transports around it, the `brain` executable composing them from configuration.
import PackageDescription

let package = Package(
    name: "brain",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "brain", targets: ["Server"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "LineProtocol", targets: ["LineProtocol"]),
        .library(name: "ErlangTransport", targets: ["ErlangTransport"]),
        .library(name: "S3Backend", targets: ["S3Backend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            path: "Sources/CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(
            name: "Engine",
            dependencies: [
                "CLZ4",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Engine"
        ),
        .target(
            name: "LocalDiskBackend",
            dependencies: [
                "Engine",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Backends/LocalDisk"
        ),
        .target(
            name: "S3Backend",
            dependencies: [
                "Engine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Backends/S3"
        ),
        .target(
            name: "LineProtocol",
            dependencies: [
                "Engine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Protocols/Line"
        ),
        .target(
            name: "ErlangTransport",
            dependencies: [
                "Engine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Protocols/Erlang"
        ),
        .executableTarget(
            name: "Server",
            dependencies: [
                "Engine",
                "LocalDiskBackend",
                "S3Backend",
                "LineProtocol",
                "ErlangTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/Server"
        ),
        .testTarget(
            name: "EngineTests", dependencies: ["Engine"], path: "Tests/EngineTests",
            // The script that regenerates ErlangTermFixtures.swift with a real `erl`.
            exclude: ["Fixtures/generate_term_fixtures.escript"]
        ),
        .testTarget(
            name: "LocalDiskBackendTests",
            dependencies: ["LocalDiskBackend", "Engine"],
            path: "Tests/LocalDiskBackendTests"
        ),
        .testTarget(
            name: "S3BackendTests",
            dependencies: ["S3Backend", "Engine"],
            path: "Tests/S3BackendTests",
            resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "LineProtocolTests",
            dependencies: [
                "LineProtocol", "Engine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/LineProtocolTests"
        ),
        .testTarget(
            name: "ErlangTransportTests",
            dependencies: [
                "ErlangTransport", "Engine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ErlangTransportTests"
        ),
        .testTarget(name: "ServerTests", dependencies: ["Server"], path: "Tests/ServerTests"),
    ],
    swiftLanguageModes: [.v6]
)
