//! The guest SSH server: user `egs`, public keys only, sessions as the service's user
//! (root). Exec runs the command through `/bin/sh -c` with the client's stdin (EOF passed
//! on), stdout as data, stderr as extended data and the real exit status; a shell without a
//! PTY runs `/bin/sh` on the channel. Unknown channel types and requests are refused by
//! russh's defaults. (PTY shells, SFTP, env, KVP keys and port forwarding: issue 6, to come.)

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::PrivateKey;
use russh::server::{Auth, Handle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{ChildStdin, Command};

use crate::authorized::parse;

/// The only user name accepted.
pub const USER: &str = "egs";

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `id_egs.pub`: authorized client keys, re-read on every attempt.
    pub authorized_keys: PathBuf,
    /// Where the KVP pools are: keys in the External pool's
    /// `eryph:guest-services:client-public-key[:<id>]` slots count too (`KvpAuthEnabled`).
    pub kvp_dir: Option<PathBuf>,
    /// The host key.
    pub host_key: PrivateKey,
}

/// russh's configuration for EGS: public keys only, no compression, bounded pre-auth time.
pub fn config(settings: &Settings) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![settings.host_key.clone()],
        auth_rejection_time: std::time::Duration::from_millis(500),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        inactivity_timeout: Some(std::time::Duration::from_secs(3600)),
        max_auth_attempts: 6,
        ..Default::default()
    }
}

/// One connection's state.
pub struct Connection {
    settings: Arc<Settings>,
    stdin: HashMap<ChannelId, ChildStdin>,
}

impl Connection {
    /// A handler for a new connection.
    pub fn new(settings: Arc<Settings>) -> Self {
        Self {
            settings,
            stdin: HashMap::new(),
        }
    }

    fn authorized(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        if user != USER {
            return false;
        }
        let mut text = std::fs::read_to_string(&self.settings.authorized_keys).unwrap_or_default();
        if let Some(dir) = &self.settings.kvp_dir {
            text.push('\n');
            text.push_str(&kvp_keys(dir));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        parse(&text).0.iter().any(|k| k.allows(key, now))
    }

    fn spawn(
        &mut self,
        channel: ChannelId,
        argv: &[&str],
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(_) => return session.channel_failure(channel),
        };
        if let Some(stdin) = child.stdin.take() {
            self.stdin.insert(channel, stdin);
        }
        let handle = session.handle();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        session.channel_success(channel)?;
        tokio::spawn(async move {
            let out = tokio::spawn(pump(stdout, handle.clone(), channel, false));
            let err = tokio::spawn(pump(stderr, handle.clone(), channel, true));
            let _ = out.await;
            let _ = err.await;
            let status = child
                .wait()
                .await
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(255);
            let _ = handle.exit_status_request(channel, status as u32).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }
}

/// The authorized_keys text of the KVP key slots (External pool): the legacy
/// `eryph:guest-services:client-public-key` and every `…:client-public-key:<id>`.
pub fn kvp_keys(dir: &std::path::Path) -> String {
    let pool = egs_kvp::pool::Pool::open(dir, egs_kvp::pool::POOL_EXTERNAL);
    let Ok((records, _)) = pool.read() else {
        return String::new();
    };
    records
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

/// The KVP key slot name (an `:<id>` suffix names further slots).
pub const KVP_KEY_SLOT: &str = "eryph:guest-services:client-public-key";

/// Copies a child's output to the channel (stderr as extended data 1), in order.
async fn pump<R: AsyncRead + Unpin>(mut from: R, handle: Handle, channel: ChannelId, stderr: bool) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let data = buf[..n].to_vec();
                let sent = if stderr {
                    handle.extended_data(channel, 1, data).await
                } else {
                    handle.data(channel, data).await
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.authorized(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.authorized(user, key.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.spawn(channel, &["/bin/sh", "-c", &command], session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.spawn(channel, &["/bin/sh"], session)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(stdin) = self.stdin.get_mut(&channel) {
            if stdin.write_all(data).await.is_err() {
                self.stdin.remove(&channel);
            }
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the pipe gives the child end-of-file on stdin.
        self.stdin.remove(&channel);
        Ok(())
    }
}

/// Serves one connection on any byte stream (Unix socket, TCP, vsock).
pub async fn serve_stream<S>(
    settings: Arc<Settings>,
    config: Arc<russh::server::Config>,
    stream: S,
) -> Result<(), russh::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let session = russh::server::run_stream(config, stream, Connection::new(settings)).await?;
    session.await
}
