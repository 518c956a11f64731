//! The EGS SSH server (on russh): user `egs`, public keys only, over any byte stream — the
//! VM socket in production, Unix sockets and loopback TCP in tests.

pub mod admission;
pub mod authorized;
pub mod channel_io;
pub mod client;
pub mod control;
pub mod forward;
pub mod host_key;
pub mod input;
pub mod quirks;

pub mod server;
pub mod session;
pub mod sftp;
pub mod shell;
pub mod ssh_config;
