import Engine
import XCTest

@testable import LineProtocol

final class LineSessionTests: XCTestCase {
    /// What the client would see, or the directive when it is not a fixed reply.
    private func send(_ line: String, to session: inout LineSession) -> String {
        let bytes = Array(line.utf8)
        let step = bytes.withUnsafeBytes { session.receive($0) }
        let prefix = step.command.map { "[\($0)] " } ?? ""
        switch step.directive {
        case .ignore: return prefix + "(nothing)"
        case .execute(let command, let durability):
            return prefix + "execute " + render(.store(command, durability: durability))
        case .replyOK: return prefix + "1"
        case .replyError(let error): return prefix + "error \(error)"
        case .replyHelp: return prefix + "help"
        case .replyInfo: return prefix + "info"
        case .quit: return prefix + "quit"
        case .shutdown: return prefix + "shutdown"
        }
    }

    func testWithoutSecretEverythingIsAllowedAndAuthIsHarmless() {
        var session = LineSession(secret: nil)
        XCTAssertTrue(session.isAuthenticated)
        XCTAssertEqual(send("get k", to: &session), "[get] execute get key=k")
        XCTAssertEqual(send("auth anything", to: &session), "[auth] 1")
        XCTAssertEqual(send("info", to: &session), "[info] info")
        XCTAssertEqual(send("", to: &session), "(nothing)")
        XCTAssertEqual(send("nope", to: &session), "error unknown_command: nope")
    }

    func testAuthFlow() {
        var session = LineSession(secret: Array("s3cret".utf8))
        XCTAssertFalse(session.isAuthenticated)
        XCTAssertEqual(send("get k", to: &session), "[get] error auth_required: send auth <secret> first")
        XCTAssertEqual(send("set k v", to: &session), "[set] error auth_required: send auth <secret> first")
        XCTAssertEqual(send("info", to: &session), "[info] error auth_required: send auth <secret> first")
        XCTAssertEqual(send("shutdown", to: &session), "[shutdown] error auth_required: send auth <secret> first")
        // Unknown commands and bad arguments reveal nothing before auth.
        XCTAssertEqual(send("bogus", to: &session), "error auth_required: send auth <secret> first")
        XCTAssertEqual(send("get", to: &session), "[get] error auth_required: send auth <secret> first")
        // help, quit and auth itself are allowed.
        XCTAssertEqual(send("help", to: &session), "[help] help")
        XCTAssertEqual(send("auth", to: &session), "[auth] error wrong_arity: auth takes <secret>")
        XCTAssertEqual(send("auth s3cre", to: &session), "[auth] error auth_failed: wrong secret")
        XCTAssertEqual(send("auth s3cret!", to: &session), "[auth] error auth_failed: wrong secret")
        XCTAssertEqual(send("auth S3CRET", to: &session), "[auth] error auth_failed: wrong secret")
        XCTAssertFalse(session.isAuthenticated)
        XCTAssertEqual(send("AUTH s3cret", to: &session), "[auth] 1")
        XCTAssertTrue(session.isAuthenticated)
        XCTAssertEqual(send("get k", to: &session), "[get] execute get key=k")
        XCTAssertEqual(send("bogus", to: &session), "error unknown_command: bogus")
        // A later failed auth does not undo the earlier success.
        XCTAssertEqual(send("auth wrong", to: &session), "[auth] error auth_failed: wrong secret")
        XCTAssertEqual(send("get k", to: &session), "[get] execute get key=k")
        XCTAssertEqual(send("quit", to: &session), "[quit] quit")
    }

    func testWithIsCountedAsItsCommandAndNeedsAuth() {
        var session = LineSession(secret: Array("s".utf8))
        XCTAssertEqual(send("with durability=log set k v", to: &session), "[with] error auth_required: send auth <secret> first")
        XCTAssertEqual(send("auth s", to: &session), "[auth] 1")
        XCTAssertEqual(
            send("with durability=log set k v", to: &session),
            "[set] execute durability=log set key=k value=v encoding=bytes persist=false")
        XCTAssertEqual(send("with durability=x set k v", to: &session), "[with] error bad_option: durability=x is not memory, log or backend")
    }

    func testQuitIsAllowedBeforeAuth() {
        var session = LineSession(secret: Array("x".utf8))
        XCTAssertEqual(send("quit", to: &session), "[quit] quit")
    }

    func testSecretWithEscapedBytes() {
        var session = LineSession(secret: [0x61, 0x20, 0x0A])
        XCTAssertEqual(send(#"auth a\x20\n"#, to: &session), "[auth] 1")
    }

    func testDirectivesOfTransportCommands() {
        var session = LineSession(secret: nil)
        XCTAssertEqual(send("help", to: &session), "[help] help")
        XCTAssertEqual(send("shutdown", to: &session), "[shutdown] shutdown")
        XCTAssertEqual(send("quit", to: &session), "[quit] quit")
        XCTAssertEqual(send("get a b", to: &session), "[get] error wrong_arity: get takes <key>")
    }

    func testSecretComparison() {
        let secret = Array("secret".utf8)
        XCTAssertTrue(LineSession.secretsMatch(expected: secret, candidate: secret))
        XCTAssertFalse(LineSession.secretsMatch(expected: secret, candidate: Array("secreT".utf8)))
        XCTAssertFalse(LineSession.secretsMatch(expected: secret, candidate: Array("secretsecret".utf8)))
        XCTAssertFalse(LineSession.secretsMatch(expected: secret, candidate: Array("sec".utf8)))
        XCTAssertFalse(LineSession.secretsMatch(expected: secret, candidate: []))
        XCTAssertTrue(LineSession.secretsMatch(expected: [], candidate: []))
        XCTAssertFalse(LineSession.secretsMatch(expected: [], candidate: [0]))
    }
}
