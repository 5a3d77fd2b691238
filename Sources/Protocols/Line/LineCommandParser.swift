import Engine

/// A parsed line: a command for the engine, or one the transport answers itself.
public enum LineRequest: Sendable {
    /// A command for the ``Store``, with the durability a `with` prefix asked for, if any.
    case store(Command, durability: Durability? = nil)
    /// `auth <secret>`, the secret unescaped.
    case auth(secret: [UInt8])
    /// `help`.
    case help
    /// `info`.
    case info
    /// `quit`.
    case quit
    /// `shutdown`.
    case shutdown
}

/// The first word of a line, identified before its arguments are read.
public enum LineHead: Sendable, Equatable {
    /// The line is empty or holds only spaces: it gets no reply.
    case empty
    /// The first word is no command; the error names it.
    case unknown(LineProtocolError)
    /// A command, whose arguments start at byte `argumentsAt` of the line.
    case command(LineCommandName, argumentsAt: Int)
}

/// Turns one line (without its terminator) into a ``LineRequest``. Pure: no I/O, no state.
///
/// The grammar, which `docs/protocol.md` documents for users:
/// - Tokens are separated by one or more spaces (0x20); the command name is case-insensitive.
/// - A key, a field and a secret are one token each.
/// - A value is the rest of the line after the single space that follows the key (or the
///   field), kept verbatim: it may hold spaces, and `set k ` sets an empty value.
/// - Keys, fields, values and secrets are unescaped (see ``LineEscaping``).
public enum LineCommandParser {
    /// Finds the command of `line` without reading its arguments, so that a client that has
    /// not authenticated costs no allocation.
    ///
    /// - Parameter from: where to start looking: 0 for a whole line, or the end of a `with`
    ///   prefix's options.
    public static func head(of line: UnsafeRawBufferPointer, from: Int = 0) -> LineHead {
        var start = from
        while start < line.count && line[start] == space { start += 1 }
        guard start < line.count else { return .empty }
        var end = start
        while end < line.count && line[end] != space { end += 1 }
        let name = UnsafeRawBufferPointer(rebasing: line[start..<end])
        guard let command = LineCommandName.lookup(name) else {
            // The reply escapes control bytes; bytes that are not UTF-8 show as U+FFFD.
            let shown = String(decoding: name, as: UTF8.self)
            return .unknown(LineProtocolError(.unknownCommand, shown))
        }
        return .command(command, argumentsAt: end)
    }

    /// Reads the arguments of `command`, which start at byte `argumentsAt` of `line`.
    ///
    /// - Throws: ``LineProtocolError/Code/wrongArity`` or ``LineProtocolError/Code/badEscape``.
    public static func arguments(
        of command: LineCommandName, in line: UnsafeRawBufferPointer, at argumentsAt: Int
    ) throws(LineProtocolError) -> LineRequest {
        var cursor = Cursor(line: line, position: argumentsAt)
        switch command {
        case .with:
            return try prefixed(in: line, at: argumentsAt).request
        case .help, .info, .quit, .shutdown:
            guard cursor.atEnd else { throw wrongArity(command) }
            switch command {
            case .help: return .help
            case .info: return .info
            case .quit: return .quit
            default: return .shutdown
            }
        case .auth:
            guard let secret = try cursor.token(.secret), cursor.atEnd else { throw wrongArity(command) }
            return .auth(secret: secret)
        case .get, .del, .pdel, .vget, .vdel:
            guard let key = try cursor.token(.key), cursor.atEnd else { throw wrongArity(command) }
            switch command {
            case .get: return .store(.get(key: key))
            case .del: return .store(.delete(key: key, persist: false))
            case .pdel: return .store(.delete(key: key, persist: true))
            case .vget: return .store(.volatileGet(key: key))
            default: return .store(.volatileDelete(key: key))
            }
        case .set, .pset, .vset:
            guard let key = try cursor.token(.key), let value = try cursor.rest(.value) else {
                throw wrongArity(command)
            }
            switch command {
            case .set: return .store(.set(key: key, value: value, encoding: .bytes, persist: false))
            case .pset: return .store(.set(key: key, value: value, encoding: .bytes, persist: true))
            default: return .store(.volatileSet(key: key, value: value))
            }
        case .hsetkv, .hpsetkv:
            guard let key = try cursor.token(.key), let field = try cursor.token(.field),
                let value = try cursor.rest(.value)
            else { throw wrongArity(command) }
            return .store(.hashSet(key: key, field: field, value: value, persist: command == .hpsetkv))
        case .hget, .hdel, .hpdel:
            guard let key = try cursor.token(.key) else { throw wrongArity(command) }
            var fields: [[UInt8]] = []
            while let field = try cursor.token(.field) {
                fields.append(field)
            }
            switch command {
            case .hget: return .store(.hashGet(key: key, fields: fields))
            case .hdel: return .store(.hashDelete(key: key, fields: fields, persist: false))
            default: return .store(.hashDelete(key: key, fields: fields, persist: true))
            }
        }
    }

    /// Reads `with`'s options, which start at byte `argumentsAt` of `line`, and the command
    /// that follows them: `with durability=backend set k v`.
    ///
    /// Returns the command (the one counted) and its request carrying the options.
    ///
    /// - Throws: ``LineProtocolError/Code/badOption`` for an unknown option or value, a
    ///   repeated option or a command the options do not apply to (one that is not for the
    ///   store, or another `with`); ``LineProtocolError/Code/wrongArity`` when no option or
    ///   no command follows; the command's own errors.
    public static func prefixed(
        in line: UnsafeRawBufferPointer, at argumentsAt: Int
    ) throws(LineProtocolError) -> (command: LineCommandName, request: LineRequest) {
        var cursor = Cursor(line: line, position: argumentsAt)
        var durability: Durability? = nil
        var sawOption = false
        while true {
            cursor.skipSpaces()
            let start = cursor.position
            guard let equals = cursor.optionToken() else { break }
            let name = UnsafeRawBufferPointer(rebasing: line[start..<equals])
            let value = UnsafeRawBufferPointer(rebasing: line[(equals + 1)..<cursor.position])
            guard name.elementsEqual("durability".utf8) else {
                throw LineProtocolError(
                    .badOption, "unknown option \(String(decoding: name, as: UTF8.self)); with takes durability=memory|log|backend")
            }
            guard durability == nil else { throw LineProtocolError(.badOption, "durability is given twice") }
            guard let chosen = Durability.allCases.first(where: { value.elementsEqual($0.rawValue.utf8) }) else {
                throw LineProtocolError(
                    .badOption, "durability=\(String(decoding: value, as: UTF8.self)) is not memory, log or backend")
            }
            durability = chosen
            sawOption = true
        }
        guard sawOption else { throw wrongArity(.with) }
        switch head(of: line, from: cursor.position) {
        case .empty:
            throw wrongArity(.with)
        case .unknown(let error):
            throw error
        case .command(let command, let commandArgumentsAt):
            guard command != .with else { throw LineProtocolError(.badOption, "with cannot precede another with") }
            guard case .store(let inner, _) = try arguments(of: command, in: line, at: commandArgumentsAt) else {
                throw LineProtocolError(.badOption, "\(command.text) takes no options")
            }
            return (command, .store(inner, durability: durability))
        }
    }

    /// Parses a whole line: ``head(of:)`` then ``arguments(of:in:at:)``. Returns `nil` for an
    /// empty line.
    public static func parse(
        _ line: UnsafeRawBufferPointer
    ) throws(LineProtocolError) -> (LineCommandName, LineRequest)? {
        switch head(of: line) {
        case .empty:
            return nil
        case .unknown(let error):
            throw error
        case .command(let command, let argumentsAt):
            return (command, try arguments(of: command, in: line, at: argumentsAt))
        }
    }

    static let space = UInt8(ascii: " ")

    /// Built only on failure, so that a good command costs no string.
    static func wrongArity(_ command: LineCommandName) -> LineProtocolError {
        LineProtocolError(.wrongArity, "\(command.text) takes \(command.usage)")
    }

    /// A position in a line, reading tokens and the rest of the line.
    struct Cursor {
        let line: UnsafeRawBufferPointer
        var position: Int

        /// Whether only spaces remain.
        var atEnd: Bool {
            mutating get {
                skipSpaces()
                return position == line.count
            }
        }

        mutating func skipSpaces() {
            while position < line.count && line[position] == LineCommandParser.space { position += 1 }
        }

        /// The next space-delimited token, unescaped, or `nil` when only spaces remain.
        mutating func token(_ part: LineEscaping.Part) throws(LineProtocolError) -> [UInt8]? {
            skipSpaces()
            guard position < line.count else { return nil }
            let start = position
            while position < line.count && line[position] != LineCommandParser.space { position += 1 }
            return try LineEscaping.unescape(
                UnsafeRawBufferPointer(rebasing: line[start..<position]), part: part, column: start + 1)
        }

        /// Moves past the next token if it has the form `name=value` (a `=` that is neither
        /// its first nor its last byte) and returns the position of its `=`; otherwise stays
        /// where it is and returns `nil`.
        mutating func optionToken() -> Int? {
            var end = position
            var equals: Int? = nil
            while end < line.count && line[end] != LineCommandParser.space {
                if line[end] == UInt8(ascii: "="), equals == nil { equals = end }
                end += 1
            }
            guard let equals, equals > position, equals < end - 1 else { return nil }
            position = end
            return equals
        }

        /// The rest of the line after the one space that must follow the previous token,
        /// unescaped, or `nil` when the line ends right after that token.
        mutating func rest(_ part: LineEscaping.Part) throws(LineProtocolError) -> [UInt8]? {
            guard position < line.count else { return nil }
            // `position` is on the space that ended the previous token.
            let start = position + 1
            position = line.count
            return try LineEscaping.unescape(
                UnsafeRawBufferPointer(rebasing: line[start...]), part: part, column: start + 1)
        }
    }
}
