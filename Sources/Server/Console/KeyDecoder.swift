extension Console {
    /// A key press, as the line editor sees it.
    enum Key: Equatable, Sendable {
        /// A printable character (never a control character).
        case character(Unicode.Scalar)
        /// Enter (`\r` or `\n`).
        case enter
        /// Tab.
        case tab
        /// Backspace (`DEL` or Ctrl-H).
        case backspace
        /// The Delete key (`ESC [ 3 ~`).
        case delete
        /// Arrow keys.
        case left, right, up, down
        /// Home and End, in every encoding terminals use for them.
        case home, end
        /// A word to the left or right: Alt-B / Alt-F, Ctrl-Left / Ctrl-Right.
        case wordLeft, wordRight
        /// Ctrl plus a letter, given as the lower-case letter (`"a"` for Ctrl-A).
        case control(Character)
    }

    /// Turns the bytes a terminal in raw mode sends into ``Key``s: UTF-8 text, control
    /// characters and `ESC` sequences (CSI and SS3).
    ///
    /// A pure state machine: feed it one byte at a time, in any split; a key comes out when its
    /// last byte arrives. Malformed or unknown sequences are dropped whole, never half-inserted
    /// as text.
    struct KeyDecoder: Sendable {
        private enum State: Sendable {
            case ground
            /// After `ESC`.
            case escape
            /// After `ESC [`, collecting parameter bytes.
            case controlSequence(parameters: [UInt8])
            /// Inside a control sequence too long to be a key: dropped through its final byte.
            case discardingSequence
            /// After `ESC O`.
            case singleShift
            /// Inside a UTF-8 sequence: the scalar so far and the continuation bytes still due.
            case utf8(value: UInt32, remaining: Int, minimum: UInt32)
        }

        /// CSI parameters longer than this are not a key any terminal sends; they are dropped.
        private static let maximumParameterBytes = 16

        private var state = State.ground

        init() {}

        /// Feeds one byte; returns the key it completes, if any.
        mutating func feed(_ byte: UInt8) -> Key? {
            switch state {
            case .ground:
                return ground(byte)
            case .escape:
                switch byte {
                case UInt8(ascii: "["):
                    state = .controlSequence(parameters: [])
                    return nil
                case UInt8(ascii: "O"):
                    state = .singleShift
                    return nil
                case UInt8(ascii: "b"):
                    state = .ground
                    return .wordLeft
                case UInt8(ascii: "f"):
                    state = .ground
                    return .wordRight
                default:
                    // An unknown Alt combination, or Escape pressed alone before another key:
                    // drop the escape and read the byte afresh.
                    state = .ground
                    return ground(byte)
                }
            case .controlSequence(var parameters):
                if (0x20...0x3F).contains(byte) {
                    parameters.append(byte)
                    state = parameters.count > Self.maximumParameterBytes
                        ? .discardingSequence : .controlSequence(parameters: parameters)
                    return nil
                }
                state = .ground
                guard (0x40...0x7E).contains(byte) else { return nil }
                return Self.controlSequenceKey(parameters: parameters, final: byte)
            case .discardingSequence:
                if !(0x20...0x3F).contains(byte) { state = .ground }
                return nil
            case .singleShift:
                state = .ground
                switch byte {
                case UInt8(ascii: "A"): return .up
                case UInt8(ascii: "B"): return .down
                case UInt8(ascii: "C"): return .right
                case UInt8(ascii: "D"): return .left
                case UInt8(ascii: "H"): return .home
                case UInt8(ascii: "F"): return .end
                default: return nil
                }
            case .utf8(let value, let remaining, let minimum):
                guard byte & 0xC0 == 0x80 else {
                    // A truncated sequence: drop it and read this byte as the start of the next.
                    state = .ground
                    return ground(byte)
                }
                let next = value << 6 | UInt32(byte & 0x3F)
                if remaining > 1 {
                    state = .utf8(value: next, remaining: remaining - 1, minimum: minimum)
                    return nil
                }
                state = .ground
                // Overlong encodings and surrogates are not characters.
                guard next >= minimum, let scalar = Unicode.Scalar(next), !Self.isControl(scalar) else {
                    return nil
                }
                return .character(scalar)
            }
        }

        /// Decodes a whole chunk, for tests and for keys that arrive together.
        mutating func decode(_ bytes: some Sequence<UInt8>) -> [Key] {
            var keys: [Key] = []
            for byte in bytes {
                if let key = feed(byte) { keys.append(key) }
            }
            return keys
        }

        private mutating func ground(_ byte: UInt8) -> Key? {
            switch byte {
            case 0x1B:
                state = .escape
                return nil
            case 0x0D, 0x0A:
                return .enter
            case 0x09:
                return .tab
            case 0x08, 0x7F:
                return .backspace
            case 0x01...0x1A:
                return .control(Character(Unicode.Scalar(byte + 0x60)))
            case 0x20...0x7E:
                return .character(Unicode.Scalar(byte))
            case 0xC2...0xDF:
                state = .utf8(value: UInt32(byte & 0x1F), remaining: 1, minimum: 0x80)
                return nil
            case 0xE0...0xEF:
                state = .utf8(value: UInt32(byte & 0x0F), remaining: 2, minimum: 0x800)
                return nil
            case 0xF0...0xF4:
                state = .utf8(value: UInt32(byte & 0x07), remaining: 3, minimum: 0x10000)
                return nil
            default:
                // NUL, the other C0 controls, stray continuation bytes and invalid lead bytes.
                return nil
            }
        }

        private static func controlSequenceKey(parameters: [UInt8], final: UInt8) -> Key? {
            // `ESC [ 1 ; 5 C` is Ctrl-Right in xterm; the modifier is the second parameter.
            let fields = parameters.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
            let modified = fields.count > 1 && fields[1].elementsEqual([UInt8(ascii: "5")])
            switch final {
            case UInt8(ascii: "A"): return .up
            case UInt8(ascii: "B"): return .down
            case UInt8(ascii: "C"): return modified ? .wordRight : .right
            case UInt8(ascii: "D"): return modified ? .wordLeft : .left
            case UInt8(ascii: "H"): return .home
            case UInt8(ascii: "F"): return .end
            case UInt8(ascii: "~"):
                switch fields.first.map(Array.init) ?? [] {
                case [UInt8(ascii: "1")], [UInt8(ascii: "7")]: return .home
                case [UInt8(ascii: "4")], [UInt8(ascii: "8")]: return .end
                case [UInt8(ascii: "3")]: return .delete
                default: return nil
                }
            default:
                return nil
            }
        }

        private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
        }
    }
}
