import Engine

/// The terms Brain sends back for the store's replies. Pure.
public enum ErlangReplies {
    /// The answer to `{g, Consistency, Id, Pid, null}`: `{ok, Value}`, `ko` when the key does
    /// not exist, or `{error, Code}` when the store could not answer (`backend_unavailable`,
    /// `timeout`, `bad_term`...), which a first-Brain client can tell from `ko`.
    public static func getReply(_ reply: Reply, limits: TermLimits) -> Term {
        switch reply {
        case .value(let value):
            switch valueTerm(value, limits: limits) {
            case .success(let term): return .tuple([.atom("ok"), term])
            case .failure: return .tuple([.atom("error"), .atom("bad_term")])
            }
        case .notFound:
            return .atom("ko")
        case .error(let error):
            return .tuple([.atom("error"), .atom(Atom(error.code.rawValue))])
        case .written, .persisted, .deleted, .hash:
            return .tuple([.atom("error"), .atom("bad_command")])
        }
    }

    /// The result of a request, the second element of `{Ref, Result}`:
    /// - a value: `{ok, Value}`; a hash: `{ok, #{Field => Value}}` with binaries;
    /// - a missing key: `not_found`;
    /// - a write, a delete or a persist: `true` or `false`, Brain2's `1` and `0` (created,
    ///   existed, persisted);
    /// - an error: `{error, Code, Message}`, `Code` an atom, `Message` a binary.
    public static func result(_ reply: Reply, limits: TermLimits) -> Term {
        switch reply {
        case .value(let value):
            switch valueTerm(value, limits: limits) {
            case .success(let term):
                return .tuple([.atom("ok"), term])
            case .failure(let error):
                return errorTerm("bad_term", "the stored term cannot be decoded: \(error)")
            }
        case .notFound:
            return .atom("not_found")
        case .written(let created):
            return boolean(created)
        case .persisted(let persisted):
            return boolean(persisted)
        case .deleted(let existed):
            return boolean(existed)
        case .hash(let json):
            do throws(EngineError) {
                return .tuple([.atom("ok"), try hashTerm(json: json)])
            } catch {
                return errorTerm(error.code.rawValue, error.message)
            }
        case .error(let error):
            return errorTerm(error.code.rawValue, error.message)
        }
    }

    /// `info` as `{ok, #{Name => Value}}`: the line protocol's `info` fields, each name an
    /// atom and each value an integer, a float, or a binary when it is neither.
    public static func info(_ info: StoreInfo) -> Term {
        var map: [Term: Term] = [:]
        for (name, text) in info.fields {
            let value: Term
            if let integer = Int64(text) {
                value = .integer(integer)
            } else if let float = Double(text), float.isFinite {
                value = .float(float)
            } else {
                value = .binary(text)
            }
            map[.atom(Atom(name))] = value
        }
        return .tuple([.atom("ok"), .map(map)])
    }

    /// A stored value as the term a client gets back: a string's bytes as a binary, or as a
    /// string when it arrived as one; a volatile value as a binary; a term entry decoded.
    public static func valueTerm(_ value: StoredValue, limits: TermLimits) -> Result<Term, TermError> {
        switch value.type {
        case .string where value.encoding == .erlangString:
            return .success(value.bytes.isEmpty ? .emptyList : .string(value.bytes))
        case .string, .volatile:
            return .success(.binary(value.bytes))
        case .term:
            do throws(TermError) {
                return .success(try ExternalTermFormat.decode(value.bytes, limits: limits))
            } catch {
                return .failure(error)
            }
        case .hash:
            // A hash reaches clients through `.hash`; should a value of one appear, its JSON
            // text is what the line protocol would show.
            return .success(.binary(value.bytes))
        }
    }

    /// A hash's JSON object as a map of binaries: string values as their text, any other
    /// JSON value as its JSON text.
    public static func hashTerm(json: [UInt8]) throws(EngineError) -> Term {
        let document = try HashDocument(json: json)
        var map: [Term: Term] = [:]
        for (field, value) in document.entries {
            switch value {
            case .string(let bytes): map[.binary(field)] = .binary(bytes)
            case .json(let text): map[.binary(field)] = .binary(text)
            }
        }
        return .map(map)
    }

    /// `{error, Code, Message}`.
    static func errorTerm(_ code: String, _ message: String) -> Term {
        .tuple([.atom("error"), .atom(Atom(code)), .binary(message)])
    }

    private static func boolean(_ value: Bool) -> Term {
        .atom(value ? "true" : "false")
    }
}

/// Carries out the messages sent to Brain's name on a store, and says what to answer.
public struct ClientMessageExecutor: Sendable {
    /// What came of one message.
    public enum Outcome: Sendable, Equatable {
        /// Send `message` to `to`.
        case reply(to: Pid, message: Term)
        /// Done, with nothing to answer.
        case done
        /// A message without a reply (`s`, `p`) did not take effect; worth a log line.
        case failed(String)
    }

    /// The store the messages act on.
    public let store: any Store
    /// Bounds on the stored terms decoded for replies.
    public let limits: TermLimits

    /// An executor over `store`.
    public init(store: any Store, limits: TermLimits) {
        self.store = store
        self.limits = limits
    }

    /// Carries out `message` and returns what to do next.
    public func execute(_ message: ClientMessage) async -> Outcome {
        guard let (command, durability) = Self.storeCommand(of: message) else {
            return outcome(of: message, reply: nil)
        }
        return outcome(of: message, reply: await store.execute(command, durability: durability))
    }

    /// Carries out `message` at once, on the calling thread, when the store can answer
    /// without waiting (see ``Store/executeNow(_:durability:)``), and returns what to do
    /// next. Returns `nil`, having changed nothing, when it must wait: then call
    /// ``execute(_:)``.
    public func executeNow(_ message: ClientMessage) -> Outcome? {
        guard let (command, durability) = Self.storeCommand(of: message) else {
            return outcome(of: message, reply: nil)
        }
        guard let reply = store.executeNow(command, durability: durability) else { return nil }
        return outcome(of: message, reply: reply)
    }

    /// The store command a message carries out, and its durability; nil for a message the
    /// store need not be asked (`info`, `{hdel, Key, []}`).
    private static func storeCommand(of message: ClientMessage) -> (Command, Durability?)? {
        switch message {
        case .set(let command), .persist(let command), .get(let command, _):
            return (command, nil)
        case .request(_, _, _, let operation):
            switch operation {
            case .command(let command, let durability): return (command, durability)
            case .hashGetNoFields(let key): return (.hashGet(key: key, fields: []), nil)
            case .info, .hashDeleteNoFields: return nil
            }
        }
    }

    /// What to do once the store gave `reply` to the command of `message` (nil when the
    /// message needed no store command).
    private func outcome(of message: ClientMessage, reply: Reply?) -> Outcome {
        switch message {
        case .set(let command):
            if case .error(let error)? = reply {
                return .failed("s of \(Self.describe(command.key)) failed: \(error)")
            }
            return .done
        case .persist(let command):
            switch reply {
            case .persisted(false)?:
                return .failed(
                    "p of \(Self.describe(command.key)): the backend did not acknowledge in time; it is written back later")
            case .error(let error)?:
                return .failed("p of \(Self.describe(command.key)) failed: \(error)")
            default:
                return .done
            }
        case .get(_, let pid):
            return .reply(to: pid, message: ErlangReplies.getReply(reply ?? .notFound, limits: limits))
        case .request(let pid, let tag, _, let operation):
            let result: Term
            switch operation {
            case .command:
                result = ErlangReplies.result(reply ?? .notFound, limits: limits)
            case .info:
                result = ErlangReplies.info(store.info())
            case .hashGetNoFields:
                if case .hash? = reply {
                    result = .tuple([.atom("ok"), .map([:])])
                } else {
                    result = ErlangReplies.result(reply ?? .notFound, limits: limits)
                }
            case .hashDeleteNoFields:
                result = .atom("false")
            }
            return .reply(to: pid, message: .tuple([tag, result]))
        }
    }

    /// A key for logs: printable ASCII as is, other bytes as `\xHH`, at most 64 bytes.
    static func describe(_ key: [UInt8]) -> String {
        var text = "\""
        for byte in key.prefix(64) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text + (key.count > 64 ? "...\"" : "\"")
    }
}
