import Engine

/// The commands of the Erlang transport. The raw value indexes the
/// `brain_commands_total{transport="erlang",cmd}` counters.
public enum ErlangCommandName: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// The first Brain's messages.
    case s, g, p
    /// Requests: Brain2's commands as `{Pid, Ref, Command}` or `gen_server:call`.
    case get, set, pset, del, pdel, persist, vget, vset, vdel, hget, hset, hpset, hdel, hpdel, info

    /// The command as written in messages and in the `cmd` label: `s`, `get`, `hpset`...
    public var text: String {
        switch self {
        case .s: "s"
        case .g: "g"
        case .p: "p"
        case .get: "get"
        case .set: "set"
        case .pset: "pset"
        case .del: "del"
        case .pdel: "pdel"
        case .persist: "persist"
        case .vget: "vget"
        case .vset: "vset"
        case .vdel: "vdel"
        case .hget: "hget"
        case .hset: "hset"
        case .hpset: "hpset"
        case .hdel: "hdel"
        case .hpdel: "hpdel"
        case .info: "info"
        }
    }

    /// The same as ``text``.
    public var description: String { text }

    /// The request's shape, as quoted by `bad_command` errors.
    var usage: String {
        switch self {
        case .s: "{s, Id, Value}"
        case .g: "{g, true | false, Id, Pid, null}"
        case .p: "{p, Id}"
        case .get, .del, .pdel, .persist, .vget, .vdel: "{\(text), Key}"
        case .set, .pset, .vset: "{\(text), Key, Value}"
        case .hget, .hdel, .hpdel: "{\(text), Key} or {\(text), Key, [Field, ...]}"
        case .hset, .hpset: "{\(text), Key, Field, Value}"
        case .info: "info"
        }
    }

    private static let byName: [String: ErlangCommandName] =
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.text, $0) })

    /// The request command named `name`; the first Brain's `s`, `g` and `p` are not requests.
    static func request(named name: String) -> ErlangCommandName? {
        guard let command = byName[name], command.rawValue > ErlangCommandName.p.rawValue else { return nil }
        return command
    }
}

/// What a request asks of the store.
public enum ErlangOperation: Sendable {
    /// A store command, with the durability a `{with, Options, Command}` request asked for.
    case command(Command, durability: Durability? = nil)
    /// The node's state (`info`).
    case info
    /// `{hget, Key, []}`: no field is asked for. The answer is `{ok, #{}}` when the hash
    /// exists, `not_found` otherwise (the engine reads an empty field list as "every field").
    case hashGetNoFields(key: [UInt8])
    /// `{hdel, Key, []}`: nothing to delete, so the answer is `false` and the store is not
    /// asked (the engine reads an empty field list as "the whole hash").
    case hashDeleteNoFields(key: [UInt8])

    /// The key the operation concerns; empty for `info`.
    public var key: [UInt8] {
        switch self {
        case .command(let command, _): command.key
        case .info: []
        case .hashGetNoFields(let key), .hashDeleteNoFields(let key): key
        }
    }
}

/// A message sent to Brain's registered name, taken apart.
public enum ClientMessage: Sendable {
    /// `{s, Id, Value}`: set; no reply.
    case set(Command)
    /// `{g, Consistency, Id, Pid, null}`: get; reply `{ok, Value}`, `ko` or `{error, Code}`
    /// to `replyTo`.
    case get(Command, replyTo: Pid)
    /// `{p, Id}`: write back now; no reply.
    case persist(Command)
    /// `{Pid, Ref, Command}` or `gen_server:call(Name, Command)`: reply `{tag, Result}` to
    /// `replyTo`.
    case request(replyTo: Pid, tag: Term, name: ErlangCommandName, operation: ErlangOperation)

    /// The command, for the `cmd` label.
    public var commandName: ErlangCommandName {
        switch self {
        case .set: .s
        case .get: .g
        case .persist: .p
        case .request(_, _, let name, _): name
        }
    }

    /// The key the message concerns (messages on one key are handled in order).
    public var key: [UInt8] {
        switch self {
        case .set(let command), .get(let command, _), .persist(let command): command.key
        case .request(_, _, _, let operation): operation.key
        }
    }
}

/// A message to Brain's name that cannot be carried out.
public struct MalformedMessage: Error, Sendable, Equatable {
    /// Why, for the log and for the error reply.
    public var reason: String
    /// The command the message names, when it names one (it is counted).
    public var command: ErlangCommandName?
    /// Where to send `replyMessage`, when the message says who is waiting for an answer.
    public var replyTo: Pid?
    /// The error reply: `{error, bad_command}` for `g`, `{Tag, {error, bad_command, Reason}}`
    /// for a request.
    public var replyMessage: Term?
}

/// Takes apart the messages sent to Brain's registered name. Pure.
public enum ClientMessageParser {
    /// The message `term` means, or why it means nothing Brain can do.
    public static func parse(_ term: Term) -> Result<ClientMessage, MalformedMessage> {
        guard case .tuple(let fields) = term, let head = fields.first else {
            return .failure(MalformedMessage(reason: "\(preview(term)) is not a Brain message"))
        }
        switch head {
        case .atom("s"):
            guard fields.count == 3 else { return .failure(arity(.s)) }
            guard let key = bytes(of: fields[1]) else { return .failure(badKey(.s, fields[1])) }
            return .success(.set(valueCommand(key: key, value: fields[2], persist: false)))
        case .atom("g"):
            guard fields.count == 5 else { return .failure(arity(.g)) }
            guard case .pid(let pid) = fields[3] else {
                return .failure(MalformedMessage(reason: "g: the reply pid \(preview(fields[3])) is not a pid", command: .g))
            }
            let errorReply = Term.tuple([.atom("error"), .atom("bad_command")])
            guard fields[1] == .atom("true") || fields[1] == .atom("false") else {
                return .failure(MalformedMessage(
                    reason: "g: consistency \(preview(fields[1])) is not true or false", command: .g, replyTo: pid,
                    replyMessage: errorReply))
            }
            guard let key = bytes(of: fields[2]) else {
                var failure = badKey(.g, fields[2])
                failure.replyTo = pid
                failure.replyMessage = errorReply
                return .failure(failure)
            }
            return .success(.get(.get(key: key), replyTo: pid))
        case .atom("p"):
            guard fields.count == 2 else { return .failure(arity(.p)) }
            guard let key = bytes(of: fields[1]) else { return .failure(badKey(.p, fields[1])) }
            return .success(.persist(.persist(key: key)))
        case .pid(let pid) where fields.count == 3:
            return request(replyTo: pid, tag: fields[1], command: fields[2])
        case .atom("$gen_call") where fields.count == 3:
            guard case .tuple(let from) = fields[1], from.count == 2, case .pid(let pid) = from[0] else {
                return .failure(MalformedMessage(reason: "a call whose caller \(preview(fields[1])) is not {Pid, Tag}"))
            }
            return request(replyTo: pid, tag: from[1], command: fields[2])
        default:
            return .failure(MalformedMessage(reason: "\(preview(term)) is not a Brain message"))
        }
    }

    /// Why `with`'s options cannot be used.
    struct OptionError: Error {
        var reason: String
    }

    /// The durability `with`'s options ask for: `[{durability, Level}]` or
    /// `#{durability => Level}`, `Level` one of `memory`, `log`, `backend`.
    private static func requestDurability(_ options: Term) -> Result<Durability, OptionError> {
        let usage = "with takes [{durability, memory | log | backend}] or #{durability => ...} as options"
        var pairs: [(Term, Term)] = []
        switch options {
        case .emptyList:
            break
        case .list(let elements, tail: .emptyList):
            for element in elements {
                guard case .tuple(let pair) = element, pair.count == 2 else {
                    return .failure(OptionError(reason: "the option \(preview(element)) is not {Name, Value}; \(usage)"))
                }
                pairs.append((pair[0], pair[1]))
            }
        case .map(let entries):
            pairs = entries.map { ($0.key, $0.value) }
        default:
            return .failure(OptionError(reason: "the options \(preview(options)) are not a list or a map; \(usage)"))
        }
        var durability: Durability? = nil
        for (name, value) in pairs {
            guard name == .atom("durability") else {
                return .failure(OptionError(reason: "unknown option \(preview(name)); \(usage)"))
            }
            guard durability == nil else { return .failure(OptionError(reason: "durability is given twice")) }
            guard case .atom(let level) = value, let chosen = Durability(rawValue: level.name) else {
                return .failure(OptionError(reason: "durability \(preview(value)) is not memory, log or backend"))
            }
            durability = chosen
        }
        guard let durability else { return .failure(OptionError(reason: "no option given; \(usage)")) }
        return .success(durability)
    }

    private static func request(replyTo: Pid, tag: Term, command: Term) -> Result<ClientMessage, MalformedMessage> {
        func failure(_ name: ErlangCommandName?, _ reason: String) -> Result<ClientMessage, MalformedMessage> {
            let result = Term.tuple([.atom("error"), .atom("bad_command"), .binary(reason)])
            return .failure(MalformedMessage(
                reason: reason, command: name, replyTo: replyTo, replyMessage: .tuple([tag, result])))
        }
        if case .tuple(let wrapper) = command, wrapper.first == .atom("with") {
            guard wrapper.count == 3 else {
                return failure(nil, "with takes {with, Options, Command}")
            }
            let durability: Durability
            switch requestDurability(wrapper[1]) {
            case .success(let chosen): durability = chosen
            case .failure(let error): return failure(nil, error.reason)
            }
            if case .tuple(let inner) = wrapper[2], inner.first == .atom("with") {
                return failure(nil, "with cannot wrap another with")
            }
            switch request(replyTo: replyTo, tag: tag, command: wrapper[2]) {
            case .success(.request(let pid, let tag, let name, .command(let command, _))):
                return .success(.request(
                    replyTo: pid, tag: tag, name: name, operation: .command(command, durability: durability)))
            case .success(.request(_, _, let name, _)):
                return failure(name, "\(name) takes no options")
            case let other:
                return other
            }
        }
        let fields: [Term]
        switch command {
        case .atom(let atom): fields = [.atom(atom)]
        case .tuple(let elements): fields = elements
        default: return failure(nil, "the command \(preview(command)) is not an atom or a tuple")
        }
        guard case .atom(let atom) = fields.first, let name = ErlangCommandName.request(named: atom.name) else {
            return failure(nil, "unknown command \(preview(fields.first ?? command))")
        }
        let arguments = fields.dropFirst()
        func wrongArity() -> Result<ClientMessage, MalformedMessage> {
            failure(name, "\(name) takes \(name.usage)")
        }
        var keyBytes: [UInt8] = []
        if name != .info {
            guard let first = arguments.first else { return wrongArity() }
            guard let key = bytes(of: first) else {
                return failure(name, "\(name): the key \(preview(first)) is not a binary or a string")
            }
            keyBytes = key
        }
        func text(_ term: Term, _ what: String) -> Result<[UInt8], MalformedMessage> {
            if let bytes = bytes(of: term) { return .success(bytes) }
            let reason = "\(name): the \(what) \(preview(term)) is not a binary or a string"
            return .failure(MalformedMessage(
                reason: reason, command: name, replyTo: replyTo,
                replyMessage: .tuple([tag, .tuple([.atom("error"), .atom("bad_command"), .binary(reason)])])))
        }
        let operation: ErlangOperation
        switch name {
        case .info:
            guard arguments.isEmpty else { return wrongArity() }
            operation = .info
        case .get, .del, .pdel, .persist, .vget, .vdel:
            guard arguments.count == 1 else { return wrongArity() }
            switch name {
            case .get: operation = .command(.get(key: keyBytes))
            case .del, .pdel: operation = .command(.delete(key: keyBytes, persist: name == .pdel))
            case .persist: operation = .command(.persist(key: keyBytes))
            case .vget: operation = .command(.volatileGet(key: keyBytes))
            default: operation = .command(.volatileDelete(key: keyBytes))
            }
        case .set, .pset:
            guard arguments.count == 2 else { return wrongArity() }
            operation = .command(valueCommand(key: keyBytes, value: fields[2], persist: name == .pset))
        case .vset:
            guard arguments.count == 2 else { return wrongArity() }
            switch text(fields[2], "value") {
            case .success(let value): operation = .command(.volatileSet(key: keyBytes, value: value))
            case .failure(let error): return .failure(error)
            }
        case .hget, .hdel, .hpdel:
            guard arguments.count == 1 || arguments.count == 2 else { return wrongArity() }
            var selected: [[UInt8]] = []
            if arguments.count == 2 {
                guard let names = fieldList(fields[2]) else {
                    return failure(name, "\(name): the fields \(preview(fields[2])) are not a list of binaries or strings")
                }
                if names.isEmpty {
                    operation = name == .hget ? .hashGetNoFields(key: keyBytes) : .hashDeleteNoFields(key: keyBytes)
                    break
                }
                selected = names
            }
            operation =
                name == .hget
                ? .command(.hashGet(key: keyBytes, fields: selected))
                : .command(.hashDelete(key: keyBytes, fields: selected, persist: name == .hpdel))
        case .hset, .hpset:
            guard arguments.count == 3 else { return wrongArity() }
            let field: [UInt8]
            let value: [UInt8]
            switch text(fields[2], "field") {
            case .success(let bytes): field = bytes
            case .failure(let error): return .failure(error)
            }
            switch text(fields[3], "value") {
            case .success(let bytes): value = bytes
            case .failure(let error): return .failure(error)
            }
            operation = .command(.hashSet(key: keyBytes, field: field, value: value, persist: name == .hpset))
        case .s, .g, .p:
            return failure(nil, "unknown command \(name)")
        }
        return .success(.request(replyTo: replyTo, tag: tag, name: name, operation: operation))
    }

    /// The command that stores `value` under `key`, keeping its kind: a binary as its bytes,
    /// a string (a list of byte-sized integers, `[]` included) as its bytes marked as an
    /// Erlang string, anything else as an Erlang term in the External Term Format.
    public static func valueCommand(key: [UInt8], value: Term, persist: Bool) -> Command {
        if case .binary(let bytes) = value {
            return .set(key: key, value: bytes, encoding: .bytes, persist: persist)
        }
        if let bytes = stringBytes(of: value) {
            return .set(key: key, value: bytes, encoding: .erlangString, persist: persist)
        }
        return .setTerm(key: key, externalTermFormat: ExternalTermFormat.encode(value), persist: persist)
    }

    /// The bytes a key, a field or a text value names: a binary's bytes, or a string's
    /// character codes when each fits in a byte (`"abc"`, `[]`, `[97, 98]`). Nil for
    /// anything else.
    public static func bytes(of term: Term) -> [UInt8]? {
        if case .binary(let bytes) = term { return bytes }
        return stringBytes(of: term)
    }

    /// The bytes of an Erlang string whose character codes all fit in a byte.
    static func stringBytes(of term: Term) -> [UInt8]? {
        switch term {
        case .string(let bytes):
            return bytes
        case .emptyList:
            return []
        case .list(let elements, .emptyList):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(elements.count)
            for element in elements {
                guard case .integer(let code) = element, code >= 0 && code <= 255 else { return nil }
                bytes.append(UInt8(code))
            }
            return bytes
        default:
            return nil
        }
    }

    /// The fields of `{hget, Key, Fields}`: a list of binaries or strings, or one binary.
    private static func fieldList(_ term: Term) -> [[UInt8]]? {
        switch term {
        case .binary(let bytes):
            return [bytes]
        case .emptyList:
            return []
        case .list(let elements, .emptyList):
            var names: [[UInt8]] = []
            names.reserveCapacity(elements.count)
            for element in elements {
                guard let name = bytes(of: element) else { return nil }
                names.append(name)
            }
            return names
        default:
            // A string such as "name" is a list of integers, not a list of fields.
            return nil
        }
    }

    private static func arity(_ name: ErlangCommandName) -> MalformedMessage {
        MalformedMessage(reason: "\(name) takes \(name.usage)", command: name)
    }

    private static func badKey(_ name: ErlangCommandName, _ term: Term) -> MalformedMessage {
        MalformedMessage(reason: "\(name): the id \(preview(term)) is not a binary or a string", command: name)
    }

    /// A short rendering of a term for messages: about 100 characters at most, whatever the
    /// term's size (a term of megabytes is never printed whole).
    static func preview(_ term: Term) -> String {
        var preview = TermPreview(budget: 100)
        preview.write(term)
        return preview.text
    }
}

/// Erlang's printed syntax for a term, cut short: containers stop at the budget with `...`,
/// and long binaries and strings show their size instead of their bytes.
struct TermPreview {
    private(set) var text = ""
    private var budget: Int

    init(budget: Int) {
        self.budget = budget
    }

    mutating func write(_ term: Term) {
        guard budget > 0 else {
            append("...")
            return
        }
        switch term {
        case .tuple(let elements):
            append("{")
            writeSequence(elements)
            append("}")
        case .list(let elements, let tail):
            append("[")
            writeSequence(elements)
            if tail != .emptyList {
                append("|")
                write(tail)
            }
            append("]")
        case .map(let pairs):
            append("#{")
            var first = true
            for (key, value) in pairs {
                if !first { append(",") }
                first = false
                guard budget > 0 else {
                    append("...")
                    break
                }
                write(key)
                append(" => ")
                write(value)
            }
            append("}")
        case .binary(let bytes) where bytes.count > 40:
            append("<<...\(bytes.count) bytes>>")
        case .string(let bytes) where bytes.count > 40:
            append("\"...\(bytes.count) characters\"")
        case .bigInteger(let value) where value.magnitude.count > 16:
            append("\(value.isNegative ? "-" : "")<integer of \(value.magnitude.count) bytes>")
        case .bitBinary(let bytes, _) where bytes.count > 40:
            append("<<...\(bytes.count) bytes>>")
        default:
            append(term.printed)
        }
    }

    private mutating func writeSequence(_ elements: [Term]) {
        for (index, element) in elements.enumerated() {
            if index > 0 { append(",") }
            guard budget > 0 else {
                append("...")
                return
            }
            write(element)
        }
    }

    private mutating func append(_ piece: String) {
        text += piece
        budget -= piece.count
    }
}
