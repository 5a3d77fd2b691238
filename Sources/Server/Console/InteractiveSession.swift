#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Console {
    /// The interactive console: prompt, line editor, local commands, one command at a time.
    ///
    /// The terminal is in raw mode only while a line is edited, and is always put back before
    /// ``run()`` returns. When the terminal's settings cannot be changed, lines are read as
    /// the terminal delivers them, with the prompt but without editing.
    final class InteractiveSession {
        private let connection: NodeConnection
        private let input: CInt
        private let output: CInt
        private let errorOutput: CInt
        private let historyPath: String?
        private let prompt: String
        private let terminal: Terminal?
        private var editor: LineEditor
        private var keys = KeyDecoder()
        /// Bytes read from the terminal after an entered line (a paste of several lines),
        /// kept for the next line.
        private var unreadKeys: [UInt8] = []
        private var plainLines = LineBuffer()
        private var hintedAuthentication = false

        init(connection: NodeConnection, input: CInt, output: CInt, errorOutput: CInt, historyPath: String?) {
            self.connection = connection
            self.input = input
            self.output = output
            self.errorOutput = errorOutput
            self.historyPath = historyPath
            self.prompt = "brain \(connection.address)> "
            self.terminal = Terminal(fd: input)
            let history = historyPath.map { CommandHistory.load(from: $0) } ?? CommandHistory()
            let words = Console.commands.map(\.name).filter { $0.first?.isLetter == true }
            self.editor = LineEditor(history: history, completions: words)
        }

        /// Runs until `exit`, `quit`, Ctrl-D or the end of the input (status 0), or until the
        /// connection is lost (status 1).
        func run() -> Int32 {
            defer { terminal?.leaveRawMode() }
            say("Connected to \(connection.address). Type ? for help, exit or Ctrl-D to leave.\n")
            while let line = readLine() {
                guard !Console.isBlank(line) else { continue }
                editor.history.add(line)
                if let historyPath { editor.history.save(to: historyPath) }
                if let status = execute(line) { return status }
            }
            return 0
        }

        /// Carries out one entered line; returns an exit status when the session is over.
        private func execute(_ line: String) -> Int32? {
            let command = Console.words(of: line).first?.lowercased() ?? ""
            switch command {
            case "?", "help":
                say(Console.helpText)
                return nil
            case "exit", "quit":
                return 0
            default:
                break
            }
            let reply: String
            do {
                try connection.send(line: line)
                reply = String(decoding: try connection.readReply(), as: UTF8.self)
            } catch {
                if command == "shutdown" {
                    say("The node closed the connection: it is shutting down.\n")
                    return 0
                }
                Console.report(error, to: errorOutput)
                return 1
            }
            if command == "info", let table = InfoFormatter.format(reply) {
                say(table)
            } else {
                say(reply + "\n")
            }
            if reply.hasPrefix("error auth_required"), !hintedAuthentication {
                hintedAuthentication = true
                say("(this node has a secret: type 'auth <secret>', or start the console with --secret or BRAIN_SECRET)\n")
            }
            if command == "shutdown", !reply.hasPrefix("error") {
                say("The node is shutting down.\n")
                return 0
            }
            return nil
        }

        private func say(_ text: String) {
            Console.writeAll(output, Array(text.utf8))
        }

        // MARK: - Reading a line

        /// The next line the user entered, or `nil` at Ctrl-D on an empty line or the end of
        /// the input.
        private func readLine() -> String? {
            guard let terminal, terminal.enterRawMode() else { return readPlainLine() }
            defer { terminal.leaveRawMode() }
            redraw(terminal)
            var chunk = [UInt8](repeating: 0, count: 256)
            while true {
                if unreadKeys.isEmpty {
                    let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else {
                        say("\r\n")
                        return nil
                    }
                    unreadKeys = Array(chunk[0..<count])
                }
                var consumed = 0
                for byte in unreadKeys {
                    consumed += 1
                    guard let key = keys.feed(byte) else { continue }
                    switch editor.handle(key) {
                    case .none:
                        break
                    case .redraw:
                        redraw(terminal)
                    case .clearScreen:
                        Console.writeAll(output, LineRenderer.clearScreen)
                        redraw(terminal)
                    case .bell:
                        Console.writeAll(output, [0x07])
                    case .cancel:
                        say("^C\r\n")
                        redraw(terminal)
                    case .submit(let line):
                        unreadKeys.removeFirst(consumed)
                        say("\r\n")
                        return line
                    case .endOfInput:
                        unreadKeys.removeFirst(consumed)
                        say("\r\n")
                        return nil
                    }
                }
                unreadKeys = []
            }
        }

        private func redraw(_ terminal: Terminal) {
            Console.writeAll(
                output,
                LineRenderer.render(prompt: prompt, buffer: editor.buffer, cursor: editor.cursor, columns: terminal.columns))
        }

        /// A line from a terminal whose settings cannot be changed: the terminal edits it.
        private func readPlainLine() -> String? {
            say(prompt)
            var chunk = [UInt8](repeating: 0, count: 256)
            while true {
                if let line = plainLines.nextLine() { return String(decoding: line, as: UTF8.self) }
                let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    say("\n")
                    return plainLines.takeUnterminatedLine().map { String(decoding: $0, as: UTF8.self) }
                }
                plainLines.append(chunk[0..<count])
            }
        }
    }
}
