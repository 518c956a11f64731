//! The guest SSH server: user `egs`, public keys only (Ed25519, ECDSA, RSA-SHA2), no
//! compression, strict kex (russh's default), sessions as the service's user (root).
//!
//! Connections are bounded: at most [`Limits::max_unauthenticated`] may be between
//! connect and authentication at once (more are closed at once, like OpenSSH's
//! `MaxStartups`), each must authenticate within [`Limits::login_grace`], and at most
//! [`Limits::max_connections`] run at all. Session channels run `exec`, `shell` (with or
//! without a PTY) and the `sftp` subsystem; `direct-tcpip` and `tcpip-forward` only when
//! port forwarding is enabled; every other channel type and request is refused.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet, Preferred};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::authorized::parse;
use crate::forward::RemoteForwards;
use crate::session::{PtyRequest, SessionChannel};
use crate::shell;
use egs_kvp::store::{KvpStore, PoolId};
use egs_sys::pty;

/// Buffer between the SFTP loop and the channel.
const SFTP_PIPE: usize = 256 * 1024;

/// The only user name accepted.
pub const USER: &str = "egs";

/// The KVP key slot name (an `:<id>` suffix names further slots).
pub const KVP_KEY_SLOT: &str = "eryph:guest-services:client-public-key";

/// Connection bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time from connect to successful authentication.
    pub login_grace: Duration,
    /// Connections not yet authenticated, at once.
    pub max_unauthenticated: usize,
    /// Connections at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_grace: Duration::from_secs(30),
            max_unauthenticated: 32,
            max_connections: 256,
        }
    }
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `id_egs.pub`: authorized client keys, re-read on every attempt.
    pub authorized_keys: PathBuf,
    /// The guest's KVP (key slots, shell override).
    pub kvp: Option<Arc<dyn KvpStore>>,
    /// Whether keys in the External pool's `eryph:guest-services:client-public-key[:<id>]`
    /// slots count (`KvpAuthEnabled`).
    pub kvp_auth: bool,
    /// Whether `direct-tcpip` and `tcpip-forward` are served (`PortForwardingEnabled`).
    pub port_forwarding: bool,
    /// Host keys.
    pub host_keys: Vec<PrivateKey>,
    /// Connection bounds.
    pub limits: Limits,
}

/// russh's configuration for EGS.
pub fn config(settings: &Settings) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: settings.host_keys.clone(),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        max_auth_attempts: 6,
        nodelay: true,
        // A larger window than russh's 2 MiB default, for bulk SFTP transfers.
        window_size: 8 * 1024 * 1024,
        preferred: Preferred {
            key: std::borrow::Cow::Borrowed(&[
                Algorithm::Ed25519,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ]),
            compression: std::borrow::Cow::Borrowed(&[russh::compression::NONE]),
            ..Preferred::DEFAULT
        },
        ..Default::default()
    }
}

/// Whether a client signature algorithm is one we accept: not `ssh-rsa` (RSA with SHA-1)
/// and not DSA, as OpenSSH since 8.8; RSA keys sign with `rsa-sha2-256`/`-512`.
fn strong_signature(algorithm: &Algorithm) -> bool {
    !matches!(algorithm, Algorithm::Rsa { hash: None } | Algorithm::Dsa)
}

/// The authorized_keys text of the KVP key slots (External pool): the legacy
/// `eryph:guest-services:client-public-key` and every `…:client-public-key:<id>`.
pub fn kvp_keys(kvp: &dyn KvpStore) -> String {
    let Ok(listing) = kvp.list(PoolId::External) else {
        return String::new();
    };
    listing
        .records
        .into_iter()
        .filter(|r| {
            r.key == KVP_KEY_SLOT
                || r.key
                    .strip_prefix(KVP_KEY_SLOT)
                    .is_some_and(|rest| rest.starts_with(':'))
        })
        .map(|r| r.value + "\n")
        .collect()
}

/// One connection's state.
pub struct Connection {
    settings: Arc<Settings>,
    preauth: Option<OwnedSemaphorePermit>,
    authenticated: Arc<AtomicBool>,
    sessions: HashMap<ChannelId, SessionChannel>,
    /// Session channels not yet claimed by a request; the `sftp` subsystem takes its own.
    unclaimed: HashMap<ChannelId, Channel<Msg>>,
    remote_forwards: RemoteForwards,
}

impl Connection {
    fn new(
        settings: Arc<Settings>,
        preauth: Option<OwnedSemaphorePermit>,
        authenticated: Arc<AtomicBool>,
    ) -> Self {
        Self {
            settings,
            preauth,
            authenticated,
            sessions: HashMap::new(),
            unclaimed: HashMap::new(),
            remote_forwards: RemoteForwards::default(),
        }
    }

    fn authorized(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        // Test-only hook: a connection whose handler panics.
        #[cfg(test)]
        if user == tests::PANIC_USER {
            tests::PANICKED.store(true, Ordering::SeqCst);
            panic!("injected for the test");
        }
        if user != USER {
            return false;
        }
        let mut text = std::fs::read_to_string(&self.settings.authorized_keys).unwrap_or_default();
        if let Some(kvp) = self
            .settings
            .kvp
            .as_deref()
            .filter(|_| self.settings.kvp_auth)
        {
            text.push('\n');
            text.push_str(&kvp_keys(kvp));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        parse(&text).0.iter().any(|k| k.allows(key, now))
    }

    fn answer(&mut self, allowed: bool) -> Auth {
        if allowed {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    /// Starts `argv` on `channel` and answers the request.
    fn start(
        &mut self,
        channel: ChannelId,
        argv: Vec<String>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        // Data now goes to the process, not to an unread channel object.
        self.unclaimed.remove(&channel);
        let handle = session.handle();
        let started = self
            .sessions
            .get_mut(&channel)
            .map(|s| s.start(&argv, channel, handle));
        match started {
            Some(Ok(())) => session.channel_success(channel),
            _ => session.channel_failure(channel),
        }
    }

    fn kvp_shell(&self) -> Option<shell::Shell> {
        shell::kvp_override(self.settings.kvp.as_deref())
    }
}

fn reply(session: &mut Session, channel: ChannelId, ok: bool) -> Result<(), russh::Error> {
    if ok {
        session.channel_success(channel)
    } else {
        session.channel_failure(channel)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let allowed = strong_signature(offer.algorithm) && self.authorized(user, offer.public_key);
        Ok(self.answer(allowed))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let allowed = strong_signature(key.algorithm) && self.authorized(user, key.public_key);
        Ok(self.answer(allowed))
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.authenticated.store(true, Ordering::SeqCst);
        self.preauth = None;
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        self.sessions.insert(id, SessionChannel::default());
        self.unclaimed.insert(id, channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if !self.settings.port_forwarding {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        tokio::spawn(crate::forward::direct(
            channel,
            host_to_connect.to_string(),
            port_to_connect,
            reply,
        ));
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if !self.settings.port_forwarding {
            return Ok(false);
        }
        Ok(self
            .remote_forwards
            .add(session.handle(), address, port)
            .await)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.remote_forwards.cancel(address, port))
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.sessions.remove(&channel);
        self.unclaimed.remove(&channel);
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ok = self
            .sessions
            .get_mut(&channel)
            .is_some_and(|s| s.set_env(name, value));
        reply(session, channel, ok)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let ok = match self.sessions.get_mut(&channel) {
            Some(s) if !s.started() && s.pty.is_none() => {
                let term = if term.is_empty() || term.len() > 64 {
                    "xterm"
                } else {
                    term
                };
                s.pty = Some(PtyRequest {
                    term: term.to_string(),
                    size: pty::Size::from_request(col_width, row_height),
                });
                true
            }
            _ => false,
        };
        reply(session, channel, ok)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let size = pty::Size::from_request(col_width, row_height);
        let ok = self
            .sessions
            .get_mut(&channel)
            .is_some_and(|s| s.resize(size));
        reply(session, channel, ok)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: russh::Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(s) = self.sessions.get(&channel) {
            s.signal(&signal);
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(command) = std::str::from_utf8(data) else {
            return session.channel_failure(channel);
        };
        let argv = shell::exec_argv(self.kvp_shell(), command);
        self.start(channel, argv, session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (client_shell, client_args) = match self.sessions.get(&channel) {
            Some(s) => {
                let (a, b) = s.client_shell();
                (a.map(str::to_string), b.map(str::to_string))
            }
            None => return session.channel_failure(channel),
        };
        let chosen = shell::interactive(
            self.kvp_shell(),
            client_shell.as_deref(),
            client_args.as_deref(),
        );
        let mut argv = vec![chosen.program];
        argv.extend(chosen.args);
        self.start(channel, argv, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let claimable = self.sessions.get(&channel).is_some_and(|s| !s.started());
        let unclaimed = self.unclaimed.remove(&channel);
        let (true, "sftp", Some(chan)) = (claimable, name, unclaimed) else {
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        let handle = session.handle();
        let home = crate::session::home();
        tokio::spawn(async move {
            // The SFTP loop runs on one end of a pipe and we carry the channel's bytes to
            // and from the other, so the channel outlives the loop: its exit status must
            // follow the last reply and precede the close, or scp (SFTP mode) fails.
            let (ours, theirs) = tokio::io::duplex(SFTP_PIPE);
            russh_sftp::server::run(theirs, crate::sftp::Sftp::new(home)).await;
            let (mut from_client, mut to_client) = tokio::io::split(chan.into_stream());
            let (mut from_sftp, mut to_sftp) = tokio::io::split(ours);
            let upstream = async {
                let _ = tokio::io::copy(&mut from_client, &mut to_sftp).await;
                let _ = to_sftp.shutdown().await;
            };
            let downstream = async {
                let _ = tokio::io::copy(&mut from_sftp, &mut to_client).await;
                let _ = to_client.flush().await;
            };
            tokio::join!(upstream, downstream);
            let _ = handle.exit_status_request(channel, 0).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(s) = self.sessions.get_mut(&channel) {
            s.input(data).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(s) = self.sessions.get_mut(&channel) {
            s.eof();
        }
        Ok(())
    }
}

/// A stream that fails its reads once the login grace time has passed without
/// authentication, which ends the connection wherever it stalls (banner, kex, auth).
struct Grace<S> {
    inner: S,
    deadline: Pin<Box<tokio::time::Sleep>>,
    authenticated: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Grace<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.authenticated.load(Ordering::SeqCst) && self.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "not authenticated within the login grace time",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Grace<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves connections from `listener` until `shutdown` resolves; returns at shutdown
/// (sessions still running are dropped with the runtime).
pub async fn serve(
    listener: egs_transport::Listener,
    settings: Arc<Settings>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config(&settings));
    let limits = settings.limits;
    let preauth = Arc::new(Semaphore::new(limits.max_unauthenticated));
    let total = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        // Full: the connection is closed at once (the client sees a reset, as with
        // OpenSSH's MaxStartups).
        let (Ok(slot), Ok(permit)) = (
            total.clone().try_acquire_owned(),
            preauth.clone().try_acquire_owned(),
        ) else {
            continue;
        };
        let (settings, config) = (settings.clone(), config.clone());
        tokio::spawn(async move {
            serve_connection(settings, config, stream, Some(permit)).await;
            drop(slot);
        });
    }
}

/// Serves one connection to its end, bounded by the login grace time; `preauth` is
/// released once the client has authenticated.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    settings: Arc<Settings>,
    config: Arc<russh::server::Config>,
    stream: S,
    preauth: Option<OwnedSemaphorePermit>,
) {
    let authenticated = Arc::new(AtomicBool::new(false));
    let stream = Grace {
        inner: stream,
        deadline: Box::pin(tokio::time::sleep(settings.limits.login_grace)),
        authenticated: authenticated.clone(),
    };
    let handler = Connection::new(settings, preauth, authenticated);
    if let Ok(running) = russh::server::run_stream(config, stream, handler).await {
        let _ = running.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKeyWithHashAlg;

    /// Whether the server lets `key` in when it signs with `hash` (`None`: `ssh-rsa`, SHA-1).
    async fn login(key: &Arc<PrivateKey>, hash: Option<HashAlg>) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let authorized = dir.path().join("id_egs.pub");
        std::fs::write(&authorized, key.public_key().to_openssh().unwrap()).unwrap();
        let settings = Arc::new(Settings {
            authorized_keys: authorized,
            kvp: None,
            kvp_auth: false,
            port_forwarding: false,
            host_keys: vec![PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()],
            limits: Limits::default(),
        });
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(serve_connection(
            settings.clone(),
            Arc::new(config(&settings)),
            server_end,
            None,
        ));
        let config = Arc::new(russh::client::Config::default());
        let mut handle =
            russh::client::connect_stream(config, client_end, crate::client::AcceptAny)
                .await
                .unwrap();
        let result = handle
            .authenticate_publickey(USER, PrivateKeyWithHashAlg::new(key.clone(), hash))
            .await
            .unwrap();
        drop(handle);
        server.abort();
        result.success()
    }

    /// The user name that makes a connection's handler panic (see `authorized`).
    pub(super) const PANIC_USER: &str = "panic-for-test";
    /// Set by the hook just before it panics.
    pub(super) static PANICKED: AtomicBool = AtomicBool::new(false);

    /// Issue 16: with the release profile unwinding, a connection whose handler panics
    /// ends alone: an open session goes on and new clients still get in.
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_connection_ends_alone() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let authorized = dir.path().join("id_egs.pub");
        std::fs::write(&authorized, key.public_key().to_openssh().unwrap()).unwrap();
        let settings = Arc::new(Settings {
            authorized_keys: authorized,
            kvp: None,
            kvp_auth: false,
            port_forwarding: false,
            host_keys: vec![PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()],
            limits: Limits::default(),
        });
        let listener = egs_transport::Listener::bind(&egs_transport::Endpoint::Unix(
            dir.path().join("s.sock"),
        ))
        .await
        .unwrap();
        let endpoint = egs_transport::Endpoint::Unix(dir.path().join("s.sock"));
        tokio::spawn(serve(listener, settings, std::future::pending()));
        let first = crate::client::connect(&endpoint, &key).await.unwrap();

        let stream = egs_transport::connect(&endpoint).await.unwrap();
        let config = Arc::new(russh::client::Config::default());
        let mut doomed = russh::client::connect_stream(config, stream, crate::client::AcceptAny)
            .await
            .unwrap();
        let answer = doomed
            .authenticate_publickey(
                PANIC_USER,
                PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
            )
            .await;
        assert!(PANICKED.load(Ordering::SeqCst), "the hook panicked");
        assert!(
            !answer.is_ok_and(|a| a.success()),
            "the panicking connection did not log in"
        );

        let out = first.exec("echo still here").await.unwrap();
        assert_eq!(out.stdout, b"still here\n");
        let second = crate::client::connect(&endpoint, &key).await.unwrap();
        assert_eq!(second.exec("echo new").await.unwrap().stdout, b"new\n");
    }

    /// Issue 16: a client that signs with `ssh-rsa` (SHA-1) is refused even when it ignores
    /// the server's `server-sig-algs`; the same key signing with SHA-2 gets in.
    #[tokio::test]
    async fn rsa_signatures_must_use_sha2() {
        let rsa =
            Arc::new(PrivateKey::random(&mut rand::rng(), Algorithm::Rsa { hash: None }).unwrap());
        assert!(!login(&rsa, None).await, "ssh-rsa (SHA-1) was accepted");
        assert!(
            login(&rsa, Some(HashAlg::Sha256)).await,
            "rsa-sha2-256 was refused"
        );
        assert!(
            login(&rsa, Some(HashAlg::Sha512)).await,
            "rsa-sha2-512 was refused"
        );
    }
}
