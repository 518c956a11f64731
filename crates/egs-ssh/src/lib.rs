//! The EGS SSH server (on russh): user `egs`, public keys only, over any byte stream — the
//! VM socket in production, Unix sockets and loopback TCP in tests.

pub mod authorized;
pub mod host_key;
pub mod server;
