// swift-tools-version: 6.1
// Brain's fuzz targets (libFuzzer), a package of its own so that the main package's build and
// tests never depend on fuzzing instrumentation. Build and run them with `scripts/fuzz`; see
// docs/fuzzing.md.
//   swift build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library \
//     -Xswiftc -assert-config -Xswiftc Debug --product FuzzTermDecoder
import PackageDescription

let package = Package(
    name: "brain-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "brain", path: ".."),
        // Already a dependency of the main package; needed here for ByteBuffer and
        // EmbeddedChannel.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Declares libFuzzer's driver, which the entry points call.
        .target(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer"],
            path: "Sources/FuzzSupport"
        ),
        .executableTarget(
            name: "FuzzLineProtocol",
            dependencies: [
                "FuzzSupport",
                .product(name: "Engine", package: "brain"),
                .product(name: "LineProtocol", package: "brain"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/FuzzLineProtocol"
        ),
        .executableTarget(
            name: "FuzzTermDecoder",
            dependencies: [
                "FuzzSupport",
                .product(name: "Engine", package: "brain"),
                .product(name: "ErlangTransport", package: "brain"),
            ],
            path: "Sources/FuzzTermDecoder"
        ),
        .executableTarget(
            name: "FuzzHandshake",
            dependencies: [
                "FuzzSupport",
                .product(name: "Engine", package: "brain"),
                .product(name: "ErlangTransport", package: "brain"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Sources/FuzzHandshake"
        ),
    ],
    swiftLanguageModes: [.v6]
)
