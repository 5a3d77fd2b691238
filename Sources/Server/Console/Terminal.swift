#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal settings to put back, shared with the signal handler. Written only by the
/// console's thread, before the handler can read it (a signal handler cannot take a lock).
nonisolated(unsafe) private var savedTerminal = termios()
/// The descriptor in raw mode, or -1. Read by the signal handler.
nonisolated(unsafe) private var rawDescriptor: CInt = -1

/// Puts the terminal back and lets the signal do what it does by default.
private func restoreTerminalAndRaise(_ signal: CInt) {
    if rawDescriptor >= 0 { _ = tcsetattr(rawDescriptor, TCSADRAIN, &savedTerminal) }
    _ = installSignalHandler(signal, SIG_DFL)
    _ = raise(signal)
}

#if canImport(Glibc)
private func installSignalHandler(_ number: CInt, _ handler: __sighandler_t?) -> __sighandler_t? {
    signal(number, handler)
}
#else
private func installSignalHandler(_ number: CInt, _ handler: sig_t?) -> sig_t? {
    signal(number, handler)
}
#endif

extension Console {
    /// The terminal the interactive console reads keys from: raw mode for the line editor,
    /// and the guarantee that the user gets their terminal back.
    ///
    /// Raw mode is on only while a line is being edited, so a command that takes long can
    /// still be interrupted with Ctrl-C. While it is on, SIGTERM, SIGHUP and SIGQUIT restore
    /// the terminal before they end the process.
    final class Terminal {
        /// The terminal's descriptor.
        let fd: CInt
        private var original = termios()
        private(set) var isRaw = false
        private var previousHandlers: [(CInt, sighandler)] = []

        #if canImport(Glibc)
        private typealias sighandler = __sighandler_t?
        #else
        private typealias sighandler = sig_t?
        #endif

        private static let restoringSignals: [CInt] = [SIGTERM, SIGHUP, SIGQUIT, SIGINT]

        /// A terminal on `fd`, or `nil` when `fd` is not one whose settings can be read.
        init?(fd: CInt) {
            self.fd = fd
            guard isatty(fd) == 1, tcgetattr(fd, &original) == 0 else { return nil }
        }

        deinit { leaveRawMode() }

        /// The terminal's width in columns; 80 when it cannot be told.
        var columns: Int {
            var size = winsize()
            guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
            return Int(size.ws_col)
        }

        /// Turns off echo, line buffering, signals from keys and output processing, so that
        /// each key reaches the editor as it is pressed. Returns whether it took effect.
        @discardableResult
        func enterRawMode() -> Bool {
            guard !isRaw else { return true }
            var raw = original
            raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
            raw.c_oflag &= ~tcflag_t(OPOST)
            raw.c_cflag |= tcflag_t(CS8)
            raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
            withUnsafeMutableBytes(of: &raw.c_cc) { cc in
                cc[Int(VMIN)] = 1
                cc[Int(VTIME)] = 0
            }
            savedTerminal = original
            rawDescriptor = fd
            previousHandlers = Self.restoringSignals.map { ($0, installSignalHandler($0) { restoreTerminalAndRaise($0) }) }
            // TCSADRAIN, not TCSAFLUSH: keys typed while a command ran are kept.
            guard tcsetattr(fd, TCSADRAIN, &raw) == 0 else {
                restoreHandlers()
                rawDescriptor = -1
                return false
            }
            isRaw = true
            return true
        }

        /// Puts back the settings the terminal had, and the signal handlers.
        func leaveRawMode() {
            guard isRaw else { return }
            _ = tcsetattr(fd, TCSADRAIN, &original)
            isRaw = false
            rawDescriptor = -1
            restoreHandlers()
        }

        private func restoreHandlers() {
            for (number, handler) in previousHandlers { _ = installSignalHandler(number, handler) }
            previousHandlers = []
        }
    }
}
