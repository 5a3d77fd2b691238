import ServiceLifecycle

/// A service that serves clients over a ``Store``: the line protocol, the Erlang
/// distribution node, later RESP.
///
/// `run()` binds, serves until graceful shutdown is triggered, then stops accepting, lets the
/// requests in progress finish, and returns. Transports stop before the write-back drains.
public protocol Transport: Service {
    /// A short name for logs and the `transport` label of `brain_commands_total`.
    var name: String { get }
}
