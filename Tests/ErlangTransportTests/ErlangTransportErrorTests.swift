import XCTest

@testable import ErlangTransport

final class ErlangTransportErrorTests: XCTestCase {
    func testDescriptionIsCodeThenMessage() {
        let error = ErlangTransportError(.wrongCookie, "peer client@127.0.0.1 has another cookie")
        XCTAssertEqual(error.description, "wrong_cookie: peer client@127.0.0.1 has another cookie")
    }

    func testCodesAreStableSnakeCase() {
        XCTAssertEqual(
            ErlangTransportError.Code.allCases.map(\.rawValue),
            [
                "epmd_unavailable", "name_in_use", "epmd_protocol", "invalid_configuration",
                "handshake_malformed", "handshake_not_allowed", "wrong_cookie", "handshake_timeout",
                "frame_too_large", "malformed_frame", "link_silent",
            ])
    }
}
