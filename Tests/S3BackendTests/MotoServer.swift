import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A moto S3 server (`python3 -m moto.server`) on a free loopback port, for one test.
final class MotoServer {
    let port: Int
    private let process: Process
    private let log: URL

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Whether python3 can import moto and boto3 on this machine.
    static var isAvailable: Bool {
        (try? python(["-c", "import moto.server, boto3"]).status) == 0
    }

    /// Starts moto and waits until it accepts connections.
    ///
    /// - Parameter unauthenticatedActions: when set, moto checks SigV4 signatures and IAM
    ///   permissions of every request after this many (`INITIAL_NO_AUTH_ACTION_COUNT`).
    init(unauthenticatedActions: Int? = nil) async throws {
        port = try Self.freePort()
        log = FileManager.default.temporaryDirectory.appendingPathComponent("brain-moto-\(port).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        var environment = ProcessInfo.processInfo.environment
        if let unauthenticatedActions {
            environment["INITIAL_NO_AUTH_ACTION_COUNT"] = String(unauthenticatedActions)
        }
        process.environment = environment
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while !Self.accepts(port: port) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw MotoError("moto did not start on port \(port): \(logText)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// What moto printed so far.
    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Stops moto and waits for it to exit. SIGKILL: moto keeps nothing worth a clean exit,
    /// and moto started from the test process was seen to survive SIGTERM.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: log)
    }

    /// Runs a Python snippet with boto3 configured for this server (as `s3`, `iam`, and the
    /// function `client(name, key, secret)`), and returns what it printed.
    func runBoto3(_ script: String, accessKey: String = "testing", secret: String = "testing") throws -> String {
        let prelude = """
            import boto3, json, sys
            def client(name, key=\(Self.pythonString(accessKey)), secret=\(Self.pythonString(secret))):
                return boto3.client(name, endpoint_url=\(Self.pythonString(endpoint)), aws_access_key_id=key,
                                    aws_secret_access_key=secret, region_name="us-east-1")
            s3 = client("s3")
            iam = client("iam")

            """
        let result = try Self.python(["-c", prelude + script])
        guard result.status == 0 else { throw MotoError("boto3 script failed: \(result.output)") }
        return result.output
    }

    private static func pythonString(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private static func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A port that was free a moment ago: bind port 0 on loopback and read what we got.
    private static func freePort() throws -> Int {
        try withLoopbackSocket(port: 0) { socket, _ in
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let result = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
            }
            guard result == 0 else { throw MotoError("getsockname failed") }
            return Int(UInt16(bigEndian: address.sin_port))
        } bindOrConnect: { socket, pointer, size in bind(socket, pointer, size) }
    }

    private static func accepts(port: Int) -> Bool {
        (try? withLoopbackSocket(port: port) { _, _ in true } bindOrConnect: { socket, pointer, size in
            connect(socket, pointer, size)
        }) ?? false
    }

    private static func withLoopbackSocket<T>(
        port: Int, _ body: (Int32, Int32) throws -> T,
        bindOrConnect: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws -> T {
        #if canImport(Glibc)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socket >= 0 else { throw MotoError("socket failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bindOrConnect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw MotoError("bind/connect on port \(port) failed") }
        return try body(socket, result)
    }
}

struct MotoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
