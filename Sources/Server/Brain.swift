import ArgumentParser
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
        subcommands: [Serve.self, ConfigCommand.self, ConsoleCommand.self]
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
