import ArgumentParser
import Engine
import Foundation

/// `brain`: one executable for the node and its tools (DESIGN.md, "Interface contract").
@main
struct Brain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brain",
        abstract: "Brain: a distributed, in-memory, write-back cache in front of Amazon S3.",
        discussion: """
            Start a node with no configuration (local-disk backend under ./brain-data):
              brain serve
            Talk to it:
              brain console
            """,
        subcommands: [Serve.self, ConfigCommand.self, ConsoleCommand.self, LogCommand.self, Bench.self]
    )
}

/// `brain serve`: runs a node.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node.",
        discussion: "Settings come from defaults, then the TOML file (--config or BRAIN_CONFIG), then BRAIN_* variables, then these flags:\n\n"
            + BrainConfiguration.flagsHelp
    )

    @Argument(parsing: .captureForPassthrough, help: "Settings, as --key value or --key=value (listed below).")
    var settings: [String] = []

    func run() async throws {
        if settings.contains("--help") || settings.contains("-h") {
            print(Serve.helpMessage())
            return
        }
        let status = await Node.run(arguments: settings)
        if status != 0 { throw ExitCode(status) }
    }
}

/// `brain config`: configuration tools.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Configuration tools.",
        subcommands: [Print.self]
    )

    /// `brain config print`: the effective configuration, secret masked.
    struct Print: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration as TOML, with the secret masked and where each value came from."
        )

        @Argument(parsing: .captureForPassthrough, help: "The same settings `brain serve` takes.")
        var settings: [String] = []

        func run() async throws {
            if settings.contains("--help") || settings.contains("-h") {
                print(Print.helpMessage())
                print(BrainConfiguration.flagsHelp)
                return
            }
            do {
                let configuration = try BrainConfiguration.load(
                    arguments: settings, environment: ProcessInfo.processInfo.environment,
                    currentDirectory: FileManager.default.currentDirectoryPath)
                print(configuration.rendered(maskSecret: true), terminator: "")
            } catch {
                FileHandle.standardError.write(Data("brain: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}

/// `brain console`: the interactive line-protocol client.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Talk to a node over the line protocol, interactively or from piped input.",
        discussion: "Piped input: one command per line; exit status 0, 2 if any reply was an error, 1 if the connection failed."
    )

    @Option(help: "The node's address.") var host = "127.0.0.1"
    @Option(help: "The node's line-protocol port.") var port = 3697
    @Option(help: "The node's secret (default: the BRAIN_SECRET variable).") var secret: String?

    func run() async throws {
        let secret = secret ?? ProcessInfo.processInfo.environment["BRAIN_SECRET"]
        let status = await Console.run(host: host, port: port, secret: secret)
        if status != 0 { throw ExitCode(status) }
    }
}

/// `brain log`: inspect and repair the append-only log under `data_dir/log`.
struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Inspect or repair the append-only log (durability = log).",
        subcommands: [Check.self, Repair.self]
    )

    /// Finds the log directory from the same settings `brain serve` takes.
    static func directory(_ settings: [String]) throws -> String {
        do {
            let configuration = try BrainConfiguration.load(
                arguments: settings, environment: ProcessInfo.processInfo.environment,
                currentDirectory: FileManager.default.currentDirectoryPath)
            return configuration.dataDirectory + "/log"
        } catch {
            FileHandle.standardError.write(Data("brain: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// `brain log check`: reads every segment and reports records, a torn tail, or damage.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every log segment; exit 0 if the log is whole (a torn tail included), 1 if it is damaged.")

        @Argument(parsing: .captureForPassthrough, help: "The settings `brain serve` takes (e.g. --data-dir PATH).")
        var settings: [String] = []

        func run() async throws {
            let directory = try LogCommand.directory(settings)
            let scan = try AppendOnlyLog.scan(directory: directory)
            print("log \(directory): \(scan.segments.count) segments, \(scan.records) records, \(scan.latest.count) keys, last lsn \(scan.lastLSN)")
            for segment in scan.segments { print("  \(segment.path)  \(segment.bytes) bytes") }
            if let tail = scan.tornTail {
                print("torn tail: \(tail.path) after byte \(tail.validBytes) (\(tail.fileBytes - tail.validBytes) bytes); the next start cuts it off")
            }
            if let damage = scan.damage {
                print("DAMAGED: \(damage.path) at byte \(damage.offset): \(damage.reason)")
                print("run `brain log repair` with the same settings to cut it off (the bytes are kept aside)")
                throw ExitCode(1)
            }
            print("ok")
        }
    }

    /// `brain log repair`: cuts a damaged segment at the damage, keeping the rest aside.
    struct Repair: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut the log at the first damaged record; the bytes from there on are kept in <segment>.damaged.")

        @Argument(parsing: .captureForPassthrough, help: "The settings `brain serve` takes (e.g. --data-dir PATH).")
        var settings: [String] = []

        func run() async throws {
            let directory = try LogCommand.directory(settings)
            let scan = try AppendOnlyLog.scan(directory: directory)
            guard let damage = scan.damage else {
                print("log \(directory): no damage found; nothing to repair")
                return
            }
            let setAside = try AppendOnlyLog.repair(damage)
            print("cut \(damage.path) at byte \(damage.offset) (\(damage.reason)); \(setAside) bytes kept in \(damage.path).damaged")
            print("records after the damage in that segment are lost; newer segments are kept")
        }
    }
}
