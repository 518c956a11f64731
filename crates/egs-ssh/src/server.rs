//! The guest SSH server: user `egs`, public keys only (Ed25519, ECDSA, RSA-SHA2), no
//! compression, strict kex (russh's default), sessions as the service's user (root).
//!
//! Connections are bounded: at most [`Limits::max_unauthenticated`] may be between
//! connect and authentication at once (more are closed at once, like OpenSSH's
//! `MaxStartups`), each must authenticate within [`Limits::login_grace`], and at most
//! [`Limits::max_connections`] run at all. Session channels run `exec`, `shell` (with or
//! without a PTY) and the `sftp` subsystem; `direct-tcpip` and `tcpip-forward` only when
//! port forwarding is enabled; every other channel type and request is refused.
//!
//! Audit (through `tracing`, target `egs::audit`): every connection with its transport
//! peer, every authentication with the key's fingerprint and where it was authorized
//! (`id_egs.pub` or the KVP slot), every refusal with the reason, session starts (kind,
//! never the command text) and closes, and forwarding requests. Never a secret.

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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::admission::{Admission, Admitted, Ticket, Watch};
use crate::authorized::parse;
use crate::forward::RemoteForwards;
use crate::input::Flow;
use crate::quirks::{Attempts, Identification, PARAMIKO_REPEAT, REPEAT_WAIT};
use crate::session::{PtyRequest, SessionChannel};
use crate::shell;
use egs_kvp::store::{KvpStore, PoolId};
use egs_sys::pty;

/// The only user name accepted.
pub const USER: &str = "egs";

/// The KVP key slot name (an `:<id>` suffix names further slots).
pub const KVP_KEY_SLOT: &str = "eryph:guest-services:client-public-key";

/// Guest-pool keys the service reports itself with (`original-remote-access.md` §3.6):
/// `available` while it runs.
pub const KVP_STATUS: &str = "eryph:guest-services:status";
/// The service's version.
pub const KVP_VERSION: &str = "eryph:guest-services:version";
/// The guest's operating system.
pub const KVP_OS: &str = "eryph:guest-services:operating-system";
/// Space-separated features (`shell-override`, `port-forwarding`).
pub const KVP_FEATURES: &str = "eryph:guest-services:features";

/// Connection bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time from connect to successful authentication.
    pub login_grace: Duration,
    /// Time from connect to the end of key exchange (the client's first authentication
    /// request); short, because a connection still in key exchange can be evicted anyway.
    pub kex_grace: Duration,
    /// Connections not yet authenticated, at once.
    pub max_unauthenticated: usize,
    /// Connections at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_grace: Duration::from_secs(30),
            kex_grace: Duration::from_secs(10),
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

/// The ciphers offered: russh's defaults plus `aes128-gcm@openssh.com`, which the
/// original's ssh config lists first and OpenSSH clients take when told to.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_128_GCM,
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

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
            cipher: std::borrow::Cow::Borrowed(CIPHERS),
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

/// The KVP key slots (External pool) as (slot key, authorized_keys text): the legacy
/// `eryph:guest-services:client-public-key` and every `…:client-public-key:<id>`.
pub fn kvp_keys(kvp: &dyn KvpStore) -> Vec<(String, String)> {
    let Ok(listing) = kvp.list(PoolId::External) else {
        return Vec::new();
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
        .map(|r| (r.key, r.value))
        .collect()
}

/// The authorized keys of each source, as (source, authorized_keys text).
fn key_sources(settings: &Settings) -> Vec<(String, String)> {
    let file = &settings.authorized_keys;
    let mut sources = vec![(
        file.display().to_string(),
        std::fs::read_to_string(file).unwrap_or_default(),
    )];
    if let Some(kvp) = settings.kvp.as_deref().filter(|_| settings.kvp_auth) {
        sources.extend(
            kvp_keys(kvp)
                .into_iter()
                .map(|(slot, text)| (format!("KVP slot {slot}"), text)),
        );
    }
    sources
}

/// The audit log's target.
pub const AUDIT: &str = "egs::audit";

/// Why a key was let in, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyCheck {
    /// Authorized by this source (`id_egs.pub`'s path, or `KVP slot <key>`).
    Accepted(String),
    /// Refused, and why.
    Refused(String),
}

/// One connection's state.
pub struct Connection {
    settings: Arc<Settings>,
    preauth: Option<Ticket>,
    authenticated: Arc<AtomicBool>,
    /// Its authentication attempts, as answered (for [`crate::quirks`]).
    attempts: Arc<Attempts>,
    sessions: HashMap<ChannelId, SessionChannel>,
    /// Its sessions' unread input and waiting output.
    flow: Arc<Flow>,
    /// Session channels not yet claimed by a request; the `sftp` subsystem takes its own.
    unclaimed: HashMap<ChannelId, Channel<Msg>>,
    remote_forwards: RemoteForwards,
    /// The kind of each started session (`exec`, `shell`, `sftp`), for the audit log.
    kinds: HashMap<ChannelId, &'static str>,
    /// The connection's span (id, peer): russh runs the handler in a task of its own, so
    /// audit events name it explicitly.
    span: tracing::Span,
}

impl Drop for Connection {
    /// Sessions still open when the connection ends are closed with it.
    fn drop(&mut self) {
        let span = self.span.clone();
        for (channel, kind) in self.kinds.drain() {
            tracing::info!(target: AUDIT, parent: &span, channel = %channel, kind, "session closed");
        }
    }
}

impl Connection {
    fn new(
        settings: Arc<Settings>,
        preauth: Option<Ticket>,
        authenticated: Arc<AtomicBool>,
        attempts: Arc<Attempts>,
    ) -> Self {
        Self {
            settings,
            preauth,
            authenticated,
            attempts,
            sessions: HashMap::new(),
            flow: Arc::default(),
            unclaimed: HashMap::new(),
            remote_forwards: RemoteForwards::default(),
            kinds: HashMap::new(),
            span: tracing::Span::current(),
        }
    }

    /// Why `user` may not log in with a key signing with `algorithm`, before any key is
    /// looked at (`None`: look at the keys).
    fn refusal_before_keys(&self, user: &str, algorithm: &Algorithm) -> Option<KeyCheck> {
        // Test-only hook: a connection whose handler panics.
        #[cfg(test)]
        if user == tests::PANIC_USER {
            tests::PANICKED.store(true, Ordering::SeqCst);
            panic!("injected for the test");
        }
        if user != USER {
            return Some(KeyCheck::Refused(format!(
                "user '{}' (only '{USER}' may log in)",
                user.escape_default()
            )));
        }
        if !strong_signature(algorithm) {
            return Some(KeyCheck::Refused(format!(
                "signature algorithm {algorithm} (SHA-1 RSA and DSA are refused)"
            )));
        }
        None
    }

    /// Whether `key` is authorized by one of `sources` (and unexpired), and by which.
    fn check_key(key: &russh::keys::PublicKey, sources: Vec<(String, String)>) -> KeyCheck {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut expired = None;
        for (source, text) in sources {
            for entry in parse(&text).0 {
                if entry.key.key_data() != key.key_data() {
                    continue;
                }
                if entry.allows(key, now) {
                    return KeyCheck::Accepted(source);
                }
                expired = Some(source.clone());
            }
        }
        KeyCheck::Refused(match expired {
            Some(source) => format!("key expired (expiry-time in {source})"),
            None => "key not authorized (not in id_egs.pub or a KVP key slot)".into(),
        })
    }

    /// Where authorized keys come from, re-read on every attempt: `id_egs.pub`, then the
    /// KVP key slots when `KvpAuthEnabled`. Read on a blocking thread: a file or a KVP
    /// pool lock that makes it wait must not stall the daemon's workers.
    async fn key_sources(&self) -> Vec<(String, String)> {
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || key_sources(&settings))
            .await
            .unwrap_or_default()
    }

    /// Logs the verdict on an authentication attempt and answers it.
    async fn judge_key(
        &mut self,
        user: &str,
        key: &russh::keys::PublicKey,
        algorithm: &Algorithm,
        signed: bool,
    ) -> Auth {
        self.kex_finished();
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        // The key files are read only for a request that could succeed.
        let verdict = match self.refusal_before_keys(user, algorithm) {
            Some(refusal) => refusal,
            None => Self::check_key(key, self.key_sources().await),
        };
        match verdict {
            KeyCheck::Accepted(source) if signed => {
                tracing::info!(target: AUDIT, parent: &self.span, %fingerprint, %algorithm, %source, "authenticated as {USER}");
                self.answer(true)
            }
            KeyCheck::Accepted(_) => self.answer(true),
            KeyCheck::Refused(reason) => {
                tracing::warn!(target: AUDIT, parent: &self.span, %fingerprint, %algorithm, "key refused: {reason}");
                self.answer(false)
            }
        }
    }

    fn answer(&mut self, allowed: bool) -> Auth {
        self.attempts.answered(!allowed);
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
            .map(|s| s.start(&argv, channel, handle, &self.flow));
        match started {
            Some(Ok(())) => session.channel_success(channel),
            _ => session.channel_failure(channel),
        }
    }

    /// The client asked to authenticate: key exchange is over, and the connection can no
    /// longer be evicted to make room for a newcomer.
    fn kex_finished(&self) {
        if let Some(ticket) = &self.preauth {
            ticket.kex_done();
        }
    }

    /// Logs a session's start (its kind; never the command text).
    fn started(&mut self, channel: ChannelId, kind: &'static str) {
        let pty = self.sessions.get(&channel).is_some_and(|s| s.pty.is_some());
        tracing::info!(target: AUDIT, parent: &self.span, channel = %channel, kind, pty, "session started");
        self.kinds.insert(channel, kind);
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

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        self.kex_finished();
        Ok(self.answer(false))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self
            .judge_key(user, offer.public_key, offer.algorithm, false)
            .await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self
            .judge_key(user, key.public_key, key.algorithm, true)
            .await)
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
            tracing::warn!(target: AUDIT, parent: &self.span, host = %host_to_connect.escape_default(), port = port_to_connect, "direct-tcpip refused: port forwarding is disabled");
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        tracing::info!(target: AUDIT, parent: &self.span, host = %host_to_connect.escape_default(), port = port_to_connect, "direct-tcpip opened");
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
            tracing::warn!(target: AUDIT, parent: &self.span, address = %address.escape_default(), port = *port, "tcpip-forward refused: port forwarding is disabled");
            return Ok(false);
        }
        let added = self
            .remote_forwards
            .add(session.handle(), address, port)
            .await;
        tracing::info!(target: AUDIT, parent: &self.span, address = %address.escape_default(), port = *port, added, "tcpip-forward requested");
        Ok(added)
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
        if let Some(kind) = self.kinds.remove(&channel) {
            tracing::info!(target: AUDIT, parent: &self.span, channel = %channel, kind, "session closed");
        }
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
        self.started(channel, "exec");
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
        self.started(channel, "shell");
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
            tracing::warn!(target: AUDIT, parent: &self.span, channel = %channel, subsystem = %name.escape_default(), "subsystem refused");
            return session.channel_failure(channel);
        };
        self.started(channel, "sftp");
        session.channel_success(channel)?;
        let handle = session.handle();
        let home = crate::session::home();
        tokio::spawn(async move {
            // The SFTP loop reads and writes the channel's data, but the channel stays
            // ours: its exit status must follow the last reply and precede the close, or
            // scp (SFTP mode) fails.
            let (read_half, write_half) = chan.split();
            let (stream, loop_ended) =
                crate::channel_io::ChannelPipe::new(read_half, write_half.make_writer());
            // The loop does blocking file system work (a slow disk, a hung mount): it gets
            // a thread of its own, as OpenSSH gives sftp-server a process, so it can never
            // stall the daemon's workers and other clients.
            let (thread_alive, thread_ended) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("egs-sftp".into())
                .spawn(move || {
                    let _alive = thread_alive;
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        russh_sftp::server::run(stream, crate::sftp::Sftp::new(home)).await;
                        let _ = loop_ended.await;
                    });
                });
            if let Err(e) = spawned {
                tracing::warn!(target: AUDIT, "sftp: no thread for the session: {e}");
                let _ = handle.close(channel).await;
                return;
            }
            let _ = thread_ended.await;
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
/// authentication, which ends the connection wherever it stalls (banner, kex, auth); and
/// at once for a client [`crate::quirks`] knows would otherwise wait for it.
struct Grace<S> {
    inner: S,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Until key exchange is done (`kex`).
    kex_deadline: Pin<Box<tokio::time::Sleep>>,
    kex: Option<Watch>,
    authenticated: Arc<AtomicBool>,
    identification: Identification,
    attempts: Arc<Attempts>,
    /// Armed when a paramiko client sends something after the refusal of this attempt.
    repeat: Option<(u64, Pin<Box<tokio::time::Sleep>>)>,
}

impl<S> Grace<S> {
    /// Whether a paramiko client, after a refused attempt, sent something (its repeated
    /// service request) and made no new attempt within [`REPEAT_WAIT`].
    fn paramiko_waits_for_an_answer(&mut self, cx: &mut Context<'_>) -> bool {
        let refused = self.attempts.refused();
        match &mut self.repeat {
            Some((attempt, deadline)) if refused == Some(*attempt) => {
                deadline.as_mut().poll(cx).is_ready()
            }
            Some(_) => {
                self.repeat = None;
                false
            }
            None => false,
        }
    }

    /// Notes bytes the client sent: its identification, and a paramiko client's packet
    /// after a refusal.
    fn received(&mut self, bytes: &[u8], cx: &mut Context<'_>) {
        if bytes.is_empty() {
            return;
        }
        self.identification.observe(bytes);
        if let (Some(attempt), None) = (self.attempts.refused(), &self.repeat) {
            if self.identification.is_paramiko() {
                let mut deadline = Box::pin(tokio::time::sleep(REPEAT_WAIT));
                let _ = deadline.as_mut().poll(cx);
                self.repeat = Some((attempt, deadline));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Grace<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.authenticated.load(Ordering::SeqCst) {
            if self.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "not authenticated within the login grace time",
                )));
            }
            let in_kex = self.kex.as_ref().is_some_and(|k| !k.is_kex_done());
            if in_kex && self.kex_deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no key exchange within its deadline",
                )));
            }
            if self.paramiko_waits_for_an_answer(cx) {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    PARAMIKO_REPEAT,
                )));
            }
            let before = buf.filled().len();
            let read = Pin::new(&mut self.inner).poll_read(cx, buf);
            if let Poll::Ready(Ok(())) = read {
                self.received(&buf.filled()[before..], cx);
            }
            return read;
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
    let admission = Admission::new(limits.max_unauthenticated);
    let total = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    let mut next_id: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!(target: AUDIT, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        // Full: the connection is closed at once (the client sees a reset, as with
        // OpenSSH's MaxStartups).
        let Ok(slot) = total.clone().try_acquire_owned() else {
            tracing::warn!(target: AUDIT, %peer, "connection refused: too many connections");
            continue;
        };
        next_id += 1;
        let span = tracing::info_span!(target: AUDIT, "connection", id = next_id, %peer);
        let permit = match admission.admit() {
            Admitted::Free(ticket) => ticket,
            Admitted::Evicting(ticket) => {
                tracing::warn!(target: AUDIT, parent: &span, "all login places taken: the oldest connection still in key exchange makes room");
                ticket
            }
            Admitted::Full => {
                tracing::warn!(target: AUDIT, parent: &span, "connection refused: every login place is past key exchange");
                continue;
            }
        };
        tracing::info!(target: AUDIT, parent: &span, "connection accepted");
        let (settings, config) = (settings.clone(), config.clone());
        tokio::spawn(
            async move {
                serve_connection(settings, config, stream, Some(permit)).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

/// Serves one connection to its end, bounded by the login grace time; `preauth` is
/// released once the client has authenticated.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    settings: Arc<Settings>,
    config: Arc<russh::server::Config>,
    stream: S,
    preauth: Option<Ticket>,
) {
    let authenticated = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Attempts::default());
    let watch = preauth.as_ref().map(Ticket::watch);
    let stream = Grace {
        inner: stream,
        deadline: Box::pin(tokio::time::sleep(settings.limits.login_grace)),
        kex_deadline: Box::pin(tokio::time::sleep(settings.limits.kex_grace)),
        kex: watch.clone(),
        authenticated: authenticated.clone(),
        identification: Identification::default(),
        attempts: attempts.clone(),
        repeat: None,
    };
    let handler = Connection::new(settings, preauth, authenticated.clone(), attempts);
    let run = async {
        match russh::server::run_stream(config, stream, handler).await {
            Ok(running) => running.await,
            Err(e) => Err(e),
        }
    };
    let evicted = async {
        match &watch {
            Some(watch) => watch.evicted().await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        ended = run => ended,
        () = evicted => {
            tracing::info!(target: AUDIT, "connection evicted while still in key exchange");
            return;
        }
    };
    let login = if authenticated.load(Ordering::SeqCst) {
        "after login"
    } else {
        "before login"
    };
    match ended {
        Ok(()) => tracing::info!(target: AUDIT, "connection closed {login}"),
        Err(e) => tracing::info!(target: AUDIT, "connection ended {login}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKeyWithHashAlg;

    /// Settings whose `id_egs.pub` (in `dir`) authorizes `key`.
    fn settings_authorizing(dir: &std::path::Path, key: &PrivateKey) -> Arc<Settings> {
        let authorized = dir.join("id_egs.pub");
        std::fs::write(&authorized, key.public_key().to_openssh().unwrap()).unwrap();
        Arc::new(Settings {
            authorized_keys: authorized,
            kvp: None,
            kvp_auth: false,
            port_forwarding: false,
            host_keys: vec![PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()],
            limits: Limits::default(),
        })
    }

    /// Whether the server lets `key` in when it signs with `hash` (`None`: `ssh-rsa`, SHA-1).
    async fn login(key: &Arc<PrivateKey>, hash: Option<HashAlg>) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_authorizing(dir.path(), key);
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

    /// The user name that makes a connection's handler panic (see `refusal_before_keys`).
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
        let settings = settings_authorizing(dir.path(), &key);
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
