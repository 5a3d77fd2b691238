extension Console {
    /// One command of the console's help table.
    struct CommandHelp: Sendable, Equatable {
        /// The command word, as typed.
        var name: String
        /// The arguments, `[...]` for optional ones.
        var arguments: String
        /// What it does and what it replies, in one line.
        var summary: String
        /// Whether the console handles it itself instead of sending it to the node.
        var isLocal: Bool = false

        /// `name arguments`.
        var syntax: String { arguments.isEmpty ? name : "\(name) \(arguments)" }
    }

    /// The line protocol's commands (Brain2's) and the console's own, for `?`, `help` and Tab.
    static let commands: [CommandHelp] = [
        CommandHelp(name: "get", arguments: "key", summary: "read a string: -value, or null"),
        CommandHelp(name: "set", arguments: "key value", summary: "set a string: 1 new key, 0 replaced"),
        CommandHelp(name: "pset", arguments: "key value", summary: "set a string and write it to the backend now: 1 done, 0 failed"),
        CommandHelp(name: "del", arguments: "key", summary: "delete a string: 1 existed, 0 did not"),
        CommandHelp(name: "pdel", arguments: "key", summary: "delete a string and remove it from the backend now"),
        CommandHelp(name: "vget", arguments: "key", summary: "read a volatile value (never persisted): -value, or null"),
        CommandHelp(name: "vset", arguments: "key value", summary: "set a volatile value: 1 new key, 0 replaced"),
        CommandHelp(name: "vdel", arguments: "key", summary: "delete a volatile value"),
        CommandHelp(name: "hget", arguments: "key [field ...]", summary: "a hash, or the named fields, as a JSON object, or null"),
        CommandHelp(name: "hsetkv", arguments: "key field value", summary: "set one field of a hash: 1 new field, 0 replaced"),
        CommandHelp(name: "hpsetkv", arguments: "key field value", summary: "set one field of a hash and write the hash to the backend now"),
        CommandHelp(name: "hdel", arguments: "key [field ...]", summary: "delete the named fields, or the whole hash"),
        CommandHelp(name: "hpdel", arguments: "key [field ...]", summary: "delete fields or the hash, and write it to the backend now"),
        CommandHelp(name: "with", arguments: "durability=memory|log|backend command ...", summary: "run one write with another durability than the node's"),
        CommandHelp(name: "auth", arguments: "secret", summary: "authenticate (required first when the node has a secret): 1, or an error"),
        CommandHelp(name: "info", arguments: "", summary: "the node's keys, memory, write-back, backend and command counters"),
        CommandHelp(name: "shutdown", arguments: "", summary: "stop the node: it writes every dirty key back, then exits"),
        CommandHelp(name: "help", arguments: "", summary: "this table", isLocal: true),
        CommandHelp(name: "?", arguments: "", summary: "this table", isLocal: true),
        CommandHelp(name: "quit", arguments: "", summary: "leave the console", isLocal: true),
        CommandHelp(name: "exit", arguments: "", summary: "leave the console", isLocal: true),
    ]

    /// The help table printed by `?` and `help`, each line ending in `\n`: the node's
    /// commands, then the console's own.
    static var helpText: String {
        let width = commands.map(\.syntax.count).max() ?? 0
        func row(_ command: CommandHelp) -> String {
            "  " + command.syntax + String(repeating: " ", count: width - command.syntax.count) + "  " + command.summary + "\n"
        }
        var out = "Node commands (one per line; keys and fields are single words):\n"
        for command in commands where !command.isLocal { out += row(command) }
        out += "Console commands:\n"
        for command in commands where command.isLocal { out += row(command) }
        out += """

            A value runs to the end of the line. Write a byte that cannot be typed as a C escape:
            \\\\ \\r \\n \\t \\0 \\xHH (\\x20 is a space inside a key or field).
            Replies: -value, null, 1 / 0, {json}, or error <code>: <message>.
            Keys: Left/Right, Home/End (Ctrl-A/E), Up/Down for history, Ctrl-U/K/W to delete,
            Ctrl-C to clear the line, Ctrl-D on an empty line to leave, Tab to complete a command.

            """
        return out
    }
}
