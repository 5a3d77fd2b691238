import Engine
import Foundation
import XCTest

@testable import Server

final class ConfigurationTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("brain-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Helpers

    /// Loads with `toml` (if any) written to `brain.toml` in the test directory and named by
    /// `--config brain.toml` ahead of `arguments`.
    private func load(
        _ arguments: [String] = [], environment: [String: String] = [:], toml: String? = nil
    ) throws -> BrainConfiguration {
        var arguments = arguments
        if let toml {
            try toml.write(toFile: directory + "/brain.toml", atomically: true, encoding: .utf8)
            arguments = ["--config", "brain.toml"] + arguments
        }
        return try BrainConfiguration.load(arguments: arguments, environment: environment, currentDirectory: directory)
    }

    /// The error loading gives; fails the test when loading succeeds.
    private func loadError(
        _ arguments: [String] = [], environment: [String: String] = [:], toml: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> ConfigurationError {
        do {
            let configuration = try load(arguments, environment: environment, toml: toml)
            XCTFail("expected an error, loaded \(configuration)", file: file, line: line)
            return ConfigurationError(.invalidValue, "")
        } catch let error as ConfigurationError {
            return error
        }
    }

    // MARK: - Defaults and precedence

    func testNoSourcesGiveTheDocumentedDefaults() throws {
        let configuration = try load()
        XCTAssertEqual(configuration.backend, .file(path: directory + "/brain-data/backend"))
        XCTAssertEqual(configuration.linePort, 3697)
        XCTAssertEqual(configuration.adminPort, 3698)
        XCTAssertNil(configuration.erlangNode)
        XCTAssertEqual(configuration.erlangPort, 0)
        XCTAssertEqual(configuration.bind, "127.0.0.1")
        XCTAssertNil(configuration.secret)
        XCTAssertEqual(configuration.dataDirectory, directory + "/brain-data")
        XCTAssertEqual(configuration.maxMemory, 1_073_741_824)
        XCTAssertEqual(configuration.maxDirtyBytes, 268_435_456)
        XCTAssertEqual(configuration.idleTTL, .seconds(300))
        XCTAssertEqual(configuration.flushDelay, .seconds(2))
        XCTAssertEqual(configuration.maxDirtyAge, .seconds(60))
        XCTAssertEqual(configuration.shutdownTimeout, .seconds(30))
        XCTAssertEqual(configuration.durability, .memory)
        XCTAssertEqual(configuration.fsync, .everysec)
        XCTAssertEqual(configuration.s3, S3Settings(endpoint: nil, region: nil))
        XCTAssertNil(configuration.configurationFile)
        for key in ConfigurationKey.allCases {
            XCTAssertEqual(configuration.origin(of: key), .defaultValue, key.name)
        }
        XCTAssertEqual(configuration, BrainConfiguration.defaults(currentDirectory: directory))
    }

    func testEachSourceOverridesTheOneBefore() throws {
        let configuration = try load(
            ["--erlang-port", "4003"],
            environment: ["BRAIN_ADMIN_PORT": "4002", "BRAIN_ERLANG_PORT": "5002", "HOME": "/root"],
            toml: """
                line_port = 4001
                admin_port = 5001
                erlang_port = 6001
                """)
        XCTAssertEqual(configuration.linePort, 4001)
        XCTAssertEqual(configuration.adminPort, 4002)
        XCTAssertEqual(configuration.erlangPort, 4003)
        XCTAssertEqual(configuration.maxMemory, 1 << 30)
        XCTAssertEqual(configuration.origin(of: .linePort), .file(path: "brain.toml", spelling: "line_port"))
        XCTAssertEqual(configuration.origin(of: .adminPort), .environment(variable: "BRAIN_ADMIN_PORT"))
        XCTAssertEqual(configuration.origin(of: .erlangPort), .flag("--erlang-port"))
        XCTAssertEqual(configuration.origin(of: .maxMemory), .defaultValue)
        XCTAssertEqual(configuration.configurationFile, "brain.toml")
    }

    func testConfigFileComesFromBrainConfigUnlessTheFlagNamesOne() throws {
        try "line_port = 1111\n".write(toFile: directory + "/env.toml", atomically: true, encoding: .utf8)
        try "line_port = 2222\n".write(toFile: directory + "/flag.toml", atomically: true, encoding: .utf8)
        let fromEnvironment = try load(environment: ["BRAIN_CONFIG": "env.toml"])
        XCTAssertEqual(fromEnvironment.linePort, 1111)
        XCTAssertEqual(fromEnvironment.configurationFile, "env.toml")
        let fromFlag = try load(["--config=\(directory)/flag.toml"], environment: ["BRAIN_CONFIG": "env.toml"])
        XCTAssertEqual(fromFlag.linePort, 2222)
        XCTAssertEqual(fromFlag.configurationFile, "\(directory)/flag.toml")
        XCTAssertEqual(try load(environment: ["BRAIN_CONFIG": ""]).configurationFile, nil)
    }

    func testFlagsTakeSeparateOrEqualsValues() throws {
        let configuration = try load(["--line-port=0", "--secret", "s3cr=t", "--erlang-node=brain@127.0.0.1"])
        XCTAssertEqual(configuration.linePort, 0)
        XCTAssertEqual(configuration.secret, "s3cr=t")
        XCTAssertEqual(configuration.erlangNode, "brain@127.0.0.1")
    }

    func testDefaultBackendFollowsTheEffectiveDataDirectory() throws {
        let relative = try load(["--data-dir", "state/../cache/"])
        XCTAssertEqual(relative.dataDirectory, directory + "/cache")
        XCTAssertEqual(relative.backend, .file(path: directory + "/cache/backend"))
        XCTAssertEqual(relative.origin(of: .backend), .defaultValue)
        let explicit = try load(["--data-dir", "/var/lib/brain", "--backend", "file:///mnt/records"])
        XCTAssertEqual(explicit.dataDirectory, "/var/lib/brain")
        XCTAssertEqual(explicit.backend, .file(path: "/mnt/records"))
    }

    // MARK: - Values

    func testEverySizeFormIsAccepted() throws {
        let cases: [(String, Int)] = [
            ("512mb", 512 << 20), ("2gb", 2 << 30), ("64kb", 64 << 10), ("1048576", 1_048_576),
            ("1TB", 1 << 40), ("300B", 300), ("3 Mb", 3 << 20), (" 8gb ", 8 << 30),
        ]
        for (text, bytes) in cases {
            XCTAssertEqual(try load(["--max-memory", "2tb", "--max-dirty-bytes", text]).maxDirtyBytes, bytes, text)
        }
        let fromInteger = try load(toml: "max_memory = 8589934592\nmax_dirty_bytes = \"1gb\"\n")
        XCTAssertEqual(fromInteger.maxMemory, 8 << 30)
        XCTAssertEqual(fromInteger.maxDirtyBytes, 1 << 30)
    }

    func testBadSizesNameTheKeyAndTheSource() throws {
        let error = try loadError(toml: "max_memory = \"12qb\"\n")
        XCTAssertEqual(error.code, .invalidValue)
        XCTAssertTrue(
            error.message.hasPrefix("config: max_memory = \"12qb\" (from brain.toml): not a size; use e.g. 512mb or 2gb"),
            error.message)
        for bad in ["1.5gb", "-1", "", "gb", "12 q", "99999999999999tb", "0x10"] {
            let error = try loadError(environment: ["BRAIN_MAX_DIRTY_BYTES": bad])
            XCTAssertTrue(
                error.message.hasPrefix("config: max_dirty_bytes = \"\(bad)\" (from env BRAIN_MAX_DIRTY_BYTES): not a size"),
                error.message)
        }
        XCTAssertTrue(
            try loadError(["--max-memory", "0"]).message.hasPrefix(
                "config: max_memory = \"0\" (from flag --max-memory): must be more than 0"))
        XCTAssertEqual(
            try loadError(["--max-memory", "1mb", "--max-dirty-bytes", "1mb"]).message,
            "config: max_memory = \"1mb\" (from flag --max-memory) is below the minimum, \(ConfigurationUnits.formatSize(EngineConfiguration.minimumMemory)) (a few slab pages)")
        XCTAssertTrue(
            try loadError(toml: "max_memory = true\n").message.hasPrefix(
                "config: max_memory (from brain.toml): expected a size, not a boolean"))
        XCTAssertTrue(
            try loadError(toml: "max_memory = -5\n").message.hasPrefix(
                "config: max_memory = -5 (from brain.toml): must be more than 0"))
    }

    func testEveryDurationFormIsAccepted() throws {
        let cases: [(String, Duration)] = [
            ("500ms", .milliseconds(500)), ("60s", .seconds(60)), ("5m", .seconds(300)), ("1h", .seconds(3600)),
            ("1500", .milliseconds(1500)), ("2S", .seconds(2)), ("10 m", .seconds(600)),
        ]
        for (text, duration) in cases {
            XCTAssertEqual(try load(["--idle-ttl", text]).idleTTL, duration, text)
        }
        let fromInteger = try load(toml: "shutdown_timeout = 45000\nflush_delay = 0\n")
        XCTAssertEqual(fromInteger.shutdownTimeout, .seconds(45))
        XCTAssertEqual(fromInteger.flushDelay, .zero)
    }

    func testBadDurationsNameTheKeyAndTheSource() throws {
        for bad in ["5x", "1.5s", "-5s", "m", "", "5 minutes"] {
            let error = try loadError(["--shutdown-timeout", bad])
            XCTAssertEqual(error.code, .invalidValue)
            XCTAssertEqual(
                error.message,
                "config: shutdown_timeout = \"\(bad)\" (from flag --shutdown-timeout): not a duration; use e.g. 500ms, 60s, 5m or 1h (a bare number is milliseconds)")
        }
        XCTAssertTrue(
            try loadError(toml: "idle_ttl = 0\n").message.hasPrefix(
                "config: idle_ttl = 0 (from brain.toml): must be more than 0"))
        XCTAssertTrue(
            try loadError(toml: "idle_ttl = 1.5\n").message.hasPrefix(
                "config: idle_ttl (from brain.toml): expected a duration, not a floating-point number"))
    }

    func testPortsMustBeInRange() throws {
        XCTAssertEqual(try load(["--admin-port", "65535", "--line-port", "0"]).adminPort, 65535)
        XCTAssertEqual(
            try loadError(["--admin-port", "65536"]).message,
            "config: admin_port = \"65536\" (from flag --admin-port): out of range; use a port number 0..65535 (0 turns the admin port off)")
        XCTAssertTrue(
            try loadError(environment: ["BRAIN_LINE_PORT": "http"]).message.hasPrefix(
                "config: line_port = \"http\" (from env BRAIN_LINE_PORT): not a port"))
        XCTAssertTrue(
            try loadError(toml: "erlang_port = -1\n").message.hasPrefix(
                "config: erlang_port = -1 (from brain.toml): out of range"))
    }

    func testStringKeysRefuseOtherTOMLTypes() throws {
        let error = try loadError(toml: "secret = 12345\n")
        XCTAssertEqual(error.message, "config: secret (from brain.toml): expected a string, not an integer; use a string in quotes")
        XCTAssertTrue(
            try loadError(toml: "backend = [\"memory://\"]\n").message.hasPrefix(
                "config: backend (from brain.toml): expected a string, not an array"))
    }

    func testBackendURLs() throws {
        XCTAssertEqual(try load(["--backend", "memory://"]).backend, .memory)
        XCTAssertEqual(try load(["--backend", "s3://records"]).backend, .s3(bucket: "records", prefix: ""))
        XCTAssertEqual(try load(["--backend", "S3://records/brain/prod/"]).backend, .s3(bucket: "records", prefix: "brain/prod"))
        XCTAssertEqual(try load(["--backend", "file:///srv/brain"]).backend, .file(path: "/srv/brain"))
        XCTAssertEqual(
            try loadError(["--backend", "file://data"]).message,
            "config: backend = \"file://data\" (from flag --backend): file:// needs an absolute path, with three slashes: file:///var/lib/brain")
        XCTAssertEqual(
            try loadError(["--backend", "ftp://host/x"]).message,
            "config: backend = \"ftp://host/x\" (from flag --backend): unknown backend scheme \"ftp\"; use file:///abs/path, s3://bucket/prefix or memory://")
        XCTAssertTrue(try loadError(["--backend", "s3://"]).message.hasSuffix("s3:// needs a bucket name: s3://bucket or s3://bucket/prefix"))
        XCTAssertTrue(try loadError(["--backend", "memory://x"]).message.hasSuffix("memory:// takes nothing after it"))
        XCTAssertTrue(try loadError(["--backend", "/srv/brain"]).message.hasSuffix("not a backend URL; use file:///abs/path, s3://bucket/prefix or memory://"))
    }

    func testChoicesAndNames() throws {
        let configuration = try load(["--durability", "LOG", "--fsync", "always"])
        XCTAssertEqual(configuration.durability, .log)
        XCTAssertEqual(configuration.fsync, .always)
        XCTAssertEqual(
            try loadError(["--durability", "disk"]).message,
            "config: durability = \"disk\" (from flag --durability): must be \(Durability.allCases.map(\.rawValue).dropLast().joined(separator: ", ")) or \(Durability.allCases.last!.rawValue)")
        XCTAssertEqual(
            try loadError(toml: "fsync = \"sometimes\"\n").message,
            "config: fsync = \"sometimes\" (from brain.toml): must be always, everysec or no")
        XCTAssertTrue(try loadError(["--erlang-node", "brain"]).message.hasPrefix(
            "config: erlang_node = \"brain\" (from flag --erlang-node): not a node name; use name@host"))
        XCTAssertEqual(try load(["--erlang-node", ""]).erlangNode, nil)
        XCTAssertEqual(
            try loadError(["--data-dir", ""]).message, "config: data_dir = \"\" (from flag --data-dir): must not be empty")
    }

    func testS3SectionAndItsEnvironmentVariables() throws {
        let fromFile = try load(toml: """
            backend = "s3://records/brain"

            [s3]
            endpoint = "http://127.0.0.1:5000/"
            region = "eu-west-1"
            """)
        XCTAssertEqual(fromFile.s3, S3Settings(endpoint: "http://127.0.0.1:5000", region: "eu-west-1"))
        XCTAssertEqual(fromFile.origin(of: .s3Endpoint), .file(path: "brain.toml", spelling: "s3.endpoint"))
        let fromEnvironment = try load(
            environment: ["BRAIN_S3_ENDPOINT": "https://minio.internal:9000", "BRAIN_S3_REGION": "us-east-2"])
        XCTAssertEqual(fromEnvironment.s3, S3Settings(endpoint: "https://minio.internal:9000", region: "us-east-2"))
        XCTAssertEqual(try load(["--s3-region", "ap-south-1"]).s3.region, "ap-south-1")
        XCTAssertTrue(
            try loadError(environment: ["BRAIN_S3_ENDPOINT": "127.0.0.1:5000"]).message.hasPrefix(
                "config: s3.endpoint = \"127.0.0.1:5000\" (from env BRAIN_S3_ENDPOINT): not an http(s) URL"))
        XCTAssertTrue(try loadError(toml: "s3 = \"x\"\n").message.hasPrefix("config: s3 in brain.toml must be a section"))
    }

    // MARK: - Unknown names

    func testUnknownKeysInTheFileAreNamed() throws {
        let typo = try loadError(toml: "max_memroy = \"2gb\"\n")
        XCTAssertEqual(typo.code, .unknownKey)
        XCTAssertEqual(typo.message, "config: unknown key \"max_memroy\" in brain.toml; did you mean max_memory?")
        XCTAssertEqual(
            try loadError(toml: "[s3]\nbucket = \"records\"\n").message, "config: unknown key \"s3.bucket\" in brain.toml")
        XCTAssertEqual(
            try loadError(toml: "endpoint = \"http://127.0.0.1:5000\"\n").message,
            "config: unknown key \"endpoint\" in brain.toml; did you mean endpoint under [s3]?")
        XCTAssertEqual(try loadError(toml: "[cluster]\nsize = 3\n").message, "config: unknown key \"cluster\" in brain.toml")
        XCTAssertEqual(
            try loadError(toml: "\"s3.region\" = \"eu-west-1\"\n").message,
            "config: unknown key \"s3.region\" in brain.toml; did you mean region under [s3]?")
        XCTAssertEqual(try load(toml: "s3.region = \"eu-west-1\"\n").s3.region, "eu-west-1")
    }

    func testUnknownEnvironmentVariablesAreNamedButOthersIgnored() throws {
        let error = try loadError(environment: ["BRAIN_FOO": "1"])
        XCTAssertEqual(error.code, .unknownEnvironmentVariable)
        XCTAssertTrue(error.message.hasPrefix("config: unknown environment variable BRAIN_FOO"), error.message)
        XCTAssertTrue(
            try loadError(environment: ["BRAIN_LINE_PROT": "1"]).message.hasPrefix(
                "config: unknown environment variable BRAIN_LINE_PROT; did you mean BRAIN_LINE_PORT?"))
        XCTAssertEqual(try load(environment: ["PATH": "/bin", "BRAINS": "x", "AWS_REGION": "eu-west-1"]).linePort, 3697)
    }

    func testUnknownAndIncompleteFlagsAreErrors() throws {
        let unknown = try loadError(["--max-memroy", "1gb"])
        XCTAssertEqual(unknown.code, .unknownFlag)
        XCTAssertEqual(unknown.message, "config: unknown flag --max-memroy; did you mean --max-memory?")
        let missing = try loadError(["--line-port"])
        XCTAssertEqual(missing.code, .missingValue)
        XCTAssertEqual(missing.message, "config: flag --line-port needs a value: --line-port PORT")
        XCTAssertEqual(try loadError(["--line-port", "--admin-port", "1"]).code, .missingValue)
        XCTAssertEqual(try loadError(["--config"]).message, "config: flag --config needs a value: --config PATH")
        let positional = try loadError(["brain.toml"])
        XCTAssertEqual(positional.code, .unexpectedArgument)
        XCTAssertEqual(positional.message, "config: unexpected argument \"brain.toml\"; settings are given as --key VALUE")
        XCTAssertEqual(try loadError(["--line-port", "1", "--line-port", "2"]).message, "config: flag --line-port is given twice")
    }

    func testConfigFileProblemsNameTheFile() throws {
        let missing = try loadError(["--config", "nowhere.toml"])
        XCTAssertEqual(missing.code, .unreadableFile)
        XCTAssertEqual(missing.message, "config: cannot read nowhere.toml (from flag --config): No such file or directory")
        XCTAssertEqual(
            try loadError(environment: ["BRAIN_CONFIG": "gone.toml"]).message,
            "config: cannot read gone.toml (from env BRAIN_CONFIG): No such file or directory")
        let syntax = try loadError(toml: "line_port = 1\nmax_memory = \n")
        XCTAssertEqual(syntax.code, .invalidTOML)
        XCTAssertTrue(syntax.message.hasPrefix("config: brain.toml is not valid TOML: line 2, column"), syntax.message)
    }

    // MARK: - Brain2 aliases

    func testBrain2NamesSetTheirKeysInEverySource() throws {
        let fromFile = try load(toml: "key_ttl = 120000\nserver_port = 4000\nsecret = \"cookie\"\n")
        XCTAssertEqual(fromFile.idleTTL, .seconds(120))
        XCTAssertEqual(fromFile.linePort, 4000)
        XCTAssertEqual(fromFile.secret, "cookie")
        XCTAssertEqual(fromFile.origin(of: .idleTTL), .file(path: "brain.toml", spelling: "key_ttl"))
        let fromEnvironment = try load(environment: ["BRAIN_KEY_TTL": "30000", "BRAIN_SERVER_PORT": "4100"])
        XCTAssertEqual(fromEnvironment.idleTTL, .seconds(30))
        XCTAssertEqual(fromEnvironment.linePort, 4100)
        let fromFlags = try load(["--key-ttl", "5s", "--server-port=4200"], environment: ["BRAIN_IDLE_TTL": "1h"])
        XCTAssertEqual(fromFlags.idleTTL, .seconds(5))
        XCTAssertEqual(fromFlags.linePort, 4200)
        XCTAssertEqual(fromFlags.origin(of: .idleTTL), .flag("--key-ttl"))
        XCTAssertTrue(
            try loadError(toml: "key_ttl = \"soon\"\n").message.hasPrefix(
                "config: key_ttl = \"soon\" (from brain.toml): not a duration"))
    }

    func testAnAliasAndItsKeyInOneSourceAreAnError() throws {
        let inFile = try loadError(toml: "key_ttl = 1000\nidle_ttl = \"5m\"\n")
        XCTAssertEqual(inFile.code, .duplicateSetting)
        XCTAssertTrue(inFile.message.contains("idle_ttl") && inFile.message.contains("key_ttl"), inFile.message)
        XCTAssertTrue(inFile.message.hasSuffix("are both set in brain.toml; key_ttl is Brain2's name for idle_ttl, keep only one"))
        let inEnvironment = try loadError(environment: ["BRAIN_SERVER_PORT": "1", "BRAIN_LINE_PORT": "2"])
        XCTAssertEqual(
            inEnvironment.message,
            "config: BRAIN_LINE_PORT and BRAIN_SERVER_PORT are both set in the environment; BRAIN_SERVER_PORT is Brain2's name for line_port, keep only one")
        let inFlags = try loadError(["--server-port", "1", "--line-port", "2"])
        XCTAssertEqual(
            inFlags.message,
            "config: --server-port and --line-port are both given; --server-port is Brain2's name for line_port, keep only one")
    }

    // MARK: - Security and rules between keys

    func testANonLoopbackBindRequiresASecret() throws {
        let error = try loadError(["--bind", "0.0.0.0"])
        XCTAssertEqual(error.code, .secretRequired)
        XCTAssertEqual(
            error.message,
            "config: bind = \"0.0.0.0\" (from flag --bind) is not a loopback address, so secret is required; set secret (BRAIN_SECRET, --secret) or bind to 127.0.0.1")
        for address in ["10.1.2.3", "::", "2001:db8::1", "cache.example.com"] {
            XCTAssertEqual(try loadError(environment: ["BRAIN_BIND": address]).code, .secretRequired, address)
            XCTAssertEqual(try load(environment: ["BRAIN_BIND": address, "BRAIN_SECRET": "k"]).bind, address)
        }
        for address in ["127.0.0.1", "127.8.9.10", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LocalHost"] {
            XCTAssertEqual(try load(["--bind", address]).bind, address)
        }
        for bad in ["127.0.0.256", "not an address", "", "[::1]"] {
            let error = try loadError(["--bind", bad, "--secret", "k"])
            XCTAssertEqual(error.code, .invalidValue, bad)
            XCTAssertTrue(error.message.hasSuffix("not an IP address or host name; use e.g. 127.0.0.1, ::1 or 0.0.0.0 (with a secret)"))
        }
    }

    func testSecretValuesNeverAppearInMessages() throws {
        let error = try loadError(["--secret", "hunter2\u{7}"])
        XCTAssertEqual(error.message, "config: secret (from flag --secret): holds a control character")
    }

    func testRulesBetweenKeys() throws {
        let dirty = try loadError(["--max-dirty-bytes", "2gb"])
        XCTAssertEqual(dirty.code, .conflictingValues)
        XCTAssertEqual(
            dirty.message,
            "config: max_dirty_bytes = \"2gb\" (from flag --max-dirty-bytes) is more than max_memory = \"1gb\" (default); max_dirty_bytes must be at most max_memory")
        XCTAssertEqual(
            try loadError(environment: ["BRAIN_FLUSH_DELAY": "90s"]).message,
            "config: max_dirty_age = \"1m\" (default) is less than flush_delay = \"90s\" (from env BRAIN_FLUSH_DELAY); max_dirty_age must be at least flush_delay")
        XCTAssertEqual(
            try loadError(["--admin-port", "3697"]).message,
            "config: line_port = 3697 (default) and admin_port = 3697 (from flag --admin-port) are the same port; give each its own, or 0 to turn one off")
        XCTAssertEqual(try load(["--admin-port", "3697", "--line-port", "0"]).adminPort, 3697)
        XCTAssertEqual(try load(["--erlang-port", "3697"]).erlangPort, 3697)
        XCTAssertEqual(try loadError(["--erlang-port", "3697", "--erlang-node", "b@h"]).code, .conflictingValues)
    }

    // MARK: - Rendering

    func testRenderingNamesOriginsAndMasksTheSecret() throws {
        let configuration = try load(
            ["--bind", "0.0.0.0"], environment: ["BRAIN_SECRET": "hunter2"], toml: "max_memory = \"2gb\"\nkey_ttl = 1000\n")
        let text = configuration.rendered()
        XCTAssertFalse(text.contains("hunter2"))
        let lines = text.split(separator: "\n").map(String.init)
        func line(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) } }
        XCTAssertEqual(line("secret =").map(normalizeSpaces), "secret = \"********\" # from env BRAIN_SECRET")
        XCTAssertEqual(line("bind =").map(normalizeSpaces), "bind = \"0.0.0.0\" # from flag --bind")
        XCTAssertEqual(line("max_memory =").map(normalizeSpaces), "max_memory = \"2gb\" # from brain.toml")
        XCTAssertEqual(line("idle_ttl =").map(normalizeSpaces), "idle_ttl = \"1s\" # from brain.toml (as key_ttl)")
        XCTAssertEqual(line("line_port =").map(normalizeSpaces), "line_port = 3697 # default")
        XCTAssertEqual(
            line("backend =").map(normalizeSpaces),
            "backend = \"file://\(directory)/brain-data/backend\" # default: file://<data_dir>/backend")
        XCTAssertEqual(line("# erlang_node").map(normalizeSpaces), "# erlang_node is unset # default")
        XCTAssertTrue(lines.contains("[s3]"))
        XCTAssertEqual(line("# Configuration file:"), "# Configuration file: brain.toml")
        XCTAssertTrue(configuration.rendered(maskSecret: false).contains("\"hunter2\""))
    }

    func testRenderedTextLoadsBackToTheSameConfiguration() throws {
        let original = try load(
            [
                "--backend", "s3://records/brain", "--line-port", "0", "--admin-port", "9100",
                "--erlang-node", "brain@10.0.0.7", "--erlang-port", "4370", "--bind", "::",
                "--secret", "a \"quoted\" \\ secret", "--data-dir", "/var/lib/brain", "--max-memory", "5000000",
                "--max-dirty-bytes", "64kb", "--idle-ttl", "1500", "--flush-delay", "0", "--max-dirty-age", "2h",
                "--shutdown-timeout", "90s", "--durability", "backend", "--fsync", "no",
                "--s3-endpoint", "http://127.0.0.1:5000", "--s3-region", "eu-west-3",
            ])
        let roundTripped = try load(toml: original.rendered(maskSecret: false))
        XCTAssertEqual(roundTripped, original)
        XCTAssertEqual(roundTripped.secret, "a \"quoted\" \\ secret")
        for key in ConfigurationKey.allCases {
            XCTAssertEqual(roundTripped.origin(of: key), .file(path: "brain.toml", spelling: key.name), key.name)
        }
        let defaults = try load()
        XCTAssertEqual(try load(toml: defaults.rendered()), defaults)
    }

    func testSampleFileLoadsToTheDefaults() throws {
        let sample = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("brain.toml").path
        let configuration = try BrainConfiguration.load(
            arguments: ["--config", sample], environment: [:], currentDirectory: directory)
        XCTAssertEqual(configuration, BrainConfiguration.defaults(currentDirectory: directory))
        let text = try String(contentsOfFile: sample, encoding: .utf8)
        for key in ConfigurationKey.allCases {
            XCTAssertTrue(text.contains("\(key.tomlName) ="), "brain.toml lacks \(key.name)")
        }
        for alias in ConfigurationAlias.allCases {
            XCTAssertTrue(text.contains(alias.rawValue), "brain.toml does not mention \(alias.rawValue)")
        }
    }

    func testFlagsHelpListsEveryFlagWithItsDefault() {
        let help = BrainConfiguration.flagsHelp
        XCTAssertTrue(help.contains("--config PATH"))
        for key in ConfigurationKey.allCases {
            let line = help.split(separator: "\n").first { $0.hasPrefix("  \(key.flag) ") }
            XCTAssertNotNil(line, key.flag)
            XCTAssertTrue(line?.hasSuffix("[default: \(key.defaultDescription)]") ?? false, String(line ?? ""))
        }
        XCTAssertTrue(help.contains("--key-ttl DURATION"))
        XCTAssertTrue(help.contains("--server-port PORT"))
    }

    // MARK: - Units, directly

    func testUnitsFormatToTextThatParsesBack() {
        for bytes in [1, 1000, 1024, 3 << 20, 5 << 40, 1_048_577] {
            XCTAssertEqual(ConfigurationUnits.parseSize(ConfigurationUnits.formatSize(bytes)), bytes)
        }
        XCTAssertEqual(ConfigurationUnits.formatSize(256 << 20), "256mb")
        XCTAssertEqual(ConfigurationUnits.formatSize(1000), "1000b")
        for milliseconds in [0, 1, 999, 1000, 60_000, 90_000, 3_600_000, 5_400_000] {
            let duration = Duration.milliseconds(milliseconds)
            XCTAssertEqual(ConfigurationUnits.parseDuration(ConfigurationUnits.formatDuration(duration)), duration)
        }
        XCTAssertEqual(ConfigurationUnits.formatDuration(.seconds(300)), "5m")
        XCTAssertEqual(ConfigurationUnits.formatDuration(.milliseconds(1500)), "1500ms")
    }

    private func normalizeSpaces(_ line: String) -> String {
        line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
