//! The host side of the SSH channel, for `egs-tool`: connect to a guest over any
//! transport, authenticate as `egs` with the machine key, run a command, and move files
//! and directory trees over SFTP.
//!
//! Uploads go to a temporary name beside the target and are renamed into place only when
//! complete, so an interrupted upload never leaves a partial file under the target name;
//! downloads do the same locally. Existing targets are kept unless `overwrite`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use russh::client::{Handle, Msg};
pub use russh::keys::PrivateKey;
use russh::keys::PrivateKeyWithHashAlg;
use russh::{Channel, ChannelMsg};
use russh_sftp::client::SftpSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a host-side operation failed, in words a person can act on, with the exit code the
/// tool returns.
#[derive(Debug)]
pub enum ClientError {
    /// The guest cannot be reached (VM off, socket missing, nothing listening).
    Unreachable(String),
    /// Something answered, but not the guest service (no SSH, or it hung up).
    NotService(String),
    /// The guest does not accept the machine key.
    NotAuthorized(String),
    /// The target exists and `overwrite` was not given.
    Exists(String),
    /// The source does not exist.
    Missing(String),
    /// Anything else.
    Other(String),
}

impl ClientError {
    /// The process exit code for this error (0 is success; 2 is reserved for usage).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Other(_) => 1,
            ClientError::Exists(_) => 3,
            ClientError::Missing(_) => 4,
            ClientError::Unreachable(_) | ClientError::NotService(_) => 5,
            ClientError::NotAuthorized(_) => 6,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(m)
            | ClientError::NotService(m)
            | ClientError::NotAuthorized(m)
            | ClientError::Exists(m)
            | ClientError::Missing(m)
            | ClientError::Other(m) => f.write_str(m),
        }
    }
}

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Other(e.to_string())
}

/// Accepts any host key: the trust anchor is the VM socket plus the client key, as in the
/// original EGS.
pub(crate) struct AcceptAny;

impl russh::client::Handler for AcceptAny {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// An authenticated connection to a guest.
pub struct Guest {
    handle: Handle<AcceptAny>,
}

/// Connects to `endpoint` and authenticates as `egs` with `key`.
pub async fn connect(
    endpoint: &egs_transport::Endpoint,
    key: &PrivateKey,
) -> Result<Guest, ClientError> {
    let stream = egs_transport::connect(endpoint).await.map_err(|e| {
        ClientError::Unreachable(format!(
            "cannot reach {endpoint}: {e} (is the VM running, and the path or CID right?)"
        ))
    })?;
    connect_stream(stream, &endpoint.to_string(), key).await
}

/// Speaks SSH over an open `stream` to the guest called `name` in messages (any byte
/// stream: a VM socket, eryph's WebSocket) and authenticates as `egs` with `key`.
pub async fn connect_stream(
    stream: egs_transport::BoxStream,
    name: &str,
    key: &PrivateKey,
) -> Result<Guest, ClientError> {
    let config = Arc::new(russh::client::Config {
        window_size: 8 * 1024 * 1024,
        // AES-GCM first: with AES instructions it moves bytes faster than ChaCha20.
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                russh::cipher::AES_128_GCM,
                russh::cipher::AES_256_GCM,
                russh::cipher::CHACHA20_POLY1305,
            ]),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut handle = russh::client::connect_stream(config, stream, AcceptAny)
        .await
        .map_err(|e| {
            ClientError::NotService(format!(
                "{name} answered, but not as the EGS guest service ({e}); is egs-service running in the guest?"
            ))
        })?;
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let auth = handle
        .authenticate_publickey(
            crate::server::USER,
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), hash),
        )
        .await
        .map_err(|e| ClientError::NotService(format!("{name}: {e}")))?;
    if !auth.success() {
        return Err(ClientError::NotAuthorized(format!(
            "{name} does not accept this key: authorize the output of `egs-tool get-ssh-key` in the guest (id_egs.pub, or install.sh --ssh-public-key); for a catlet, `egs-tool catlet add-key`"
        )));
    }
    Ok(Guest { handle })
}

/// What a command printed and how it ended.
pub struct Output {
    /// Exit status (255 when the channel closed without one).
    pub status: u32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Guest {
    /// Runs `command` in the guest and collects its output.
    pub async fn exec(&self, command: &str) -> Result<Output, ClientError> {
        let mut channel = self.handle.channel_open_session().await.map_err(other)?;
        channel.exec(true, command).await.map_err(other)?;
        channel.eof().await.map_err(other)?;
        let mut out = Output {
            status: 255,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.status = exit_status,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Opens an SFTP session.
    pub async fn sftp(&self) -> Result<Sftp, ClientError> {
        let channel: Channel<Msg> = self.handle.channel_open_session().await.map_err(other)?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(other)?;
        // Bulk transfers keep 4 MiB of writes (and up to 32 reads) in flight, in requests of
        // 128 KiB: russh-sftp's defaults (16 × 32 KiB) left the channel idle between
        // acknowledgements. 128 KiB plus headers stays under the 256 KiB packet limit.
        let config = russh_sftp::client::Config {
            max_concurrent_reads: 32,
            max_concurrent_writes: 32,
            max_write_packet_len: 128 * 1024,
            ..Default::default()
        };
        let session = SftpSession::new_with_config(channel.into_stream(), config)
            .await
            .map_err(|e| ClientError::NotService(format!("SFTP: {e}")))?;
        Ok(Sftp { session })
    }
}

/// Progress of a transfer: called with bytes done so far and the total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// An SFTP session with the transfer operations of `egs-tool`.
pub struct Sftp {
    session: SftpSession,
}

const CHUNK: usize = 256 * 1024;
/// A large download's bytes are handed to the disk in steps of this size as they arrive.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;
/// Downloads up to this size are read whole, then written locally in one go.
const SMALL_FILE: u64 = 1024 * 1024;

/// The local directory a download lands in (`.` for a bare name).
fn local_parent(target: &Path) -> &Path {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `data` to a new file `temp` (not yet synced); on failure nothing is left.
fn write_new(temp: &Path, data: &[u8]) -> Result<(), ClientError> {
    let written =
        std::fs::File::create(temp).and_then(|mut file| std::io::Write::write_all(&mut file, data));
    written.map_err(|e| {
        let _ = std::fs::remove_file(temp);
        other(format!("{}: {e}", temp.display()))
    })
}

/// Downloaded files written under temporary names, waiting to be put in place: they are
/// made durable together ([`egs_sys::fs::sync_files`]: one sync of the filesystem on
/// Linux, not one per file), then renamed. So no target name ever holds a file that is
/// incomplete or not yet on disk, as with single files, at one sync per batch.
struct Landing {
    waiting: std::sync::Mutex<Vec<(PathBuf, PathBuf)>>,
}

/// Files a tree download puts in place at once.
const LANDING_BATCH: usize = 512;

impl Landing {
    fn new() -> Landing {
        Landing {
            waiting: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Queues the written `temp` for `target`; a full batch is put in place now.
    async fn add(&self, temp: PathBuf, target: PathBuf) -> Result<(), ClientError> {
        let batch = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.push((temp, target));
            if waiting.len() < LANDING_BATCH {
                return Ok(());
            }
            std::mem::take(&mut *waiting)
        };
        land(batch).await
    }

    /// Puts everything still waiting in place.
    async fn finish(&self) -> Result<(), ClientError> {
        let batch = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        land(batch).await
    }

    /// Removes the temporary files still waiting (the download failed).
    fn abandon(&self) {
        for (temp, _) in self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Makes the written temporary files of `batch` durable, then renames each to its target;
/// on failure the temporary files not yet renamed are removed.
async fn land(batch: Vec<(PathBuf, PathBuf)>) -> Result<(), ClientError> {
    if batch.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        let temps: Vec<PathBuf> = batch.iter().map(|(temp, _)| temp.clone()).collect();
        let mut result = egs_sys::fs::sync_files(&temps).map_err(|e| {
            other(format!(
                "{}: {e}",
                temps[0].parent().unwrap_or(&temps[0]).display()
            ))
        });
        for (temp, target) in &batch {
            if result.is_ok() {
                result = std::fs::rename(temp, target)
                    .map_err(|e| other(format!("{}: {e}", target.display())));
            }
            if result.is_err() {
                let _ = std::fs::remove_file(temp);
            }
        }
        result
    })
    .await
    .map_err(other)?
}

/// A temporary name beside `target` in the guest: `dir/.name.egs-upload-<random>`. A
/// Windows guest's names may separate with `\` (`C:\x`) as well as `/`.
fn temp_name(target: &str) -> String {
    let (dir, name) = target.split_at(target.rfind(['/', '\\']).map_or(0, |i| i + 1));
    format!("{dir}.{name}.egs-upload-{}", nonce())
}

/// The local temporary name of a download: `dir/.name.egs-download-<random>` (random, so
/// a tree holding a file of that very name cannot collide with it).
fn local_temp_name(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy());
    local_parent(target).join(format!(
        ".{}.egs-download-{}",
        name.unwrap_or_default(),
        nonce()
    ))
}

/// Eight random hex digits for temporary names.
fn nonce() -> String {
    let mut nonce = [0u8; 4];
    let _ = getrandom::fill(&mut nonce);
    nonce.iter().map(|b| format!("{b:02x}")).collect()
}

fn remote_missing(path: &str, e: russh_sftp::client::error::Error) -> ClientError {
    let text = e.to_string();
    if text.contains("No such file") || text.contains("NoSuchFile") {
        ClientError::Missing(format!("{path} does not exist in the guest"))
    } else {
        ClientError::Other(format!("{path}: {text}"))
    }
}

impl Sftp {
    async fn exists(&self, path: &str) -> bool {
        self.session.symlink_metadata(path).await.is_ok()
    }

    /// Uploads the local file `source` to `target` (temp name, then rename).
    pub async fn upload_file(
        &self,
        source: &Path,
        target: &str,
        overwrite: bool,
        progress: Progress<'_>,
    ) -> Result<u64, ClientError> {
        self.upload_one(source, target, overwrite, false, progress)
            .await
    }

    /// One upload; `absent`: the target's directory was just created, so nothing needs
    /// checking or replacing (a round trip saved per file of a new tree).
    async fn upload_one(
        &self,
        source: &Path,
        target: &str,
        overwrite: bool,
        absent: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, ClientError> {
        let mut file = tokio::fs::File::open(source)
            .await
            .map_err(|e| ClientError::Missing(format!("{}: {e}", source.display())))?;
        let total = file.metadata().await.map_err(other)?.len();
        if !absent && !overwrite && self.exists(target).await {
            return Err(ClientError::Exists(format!(
                "{target} exists in the guest (use --overwrite to replace it)"
            )));
        }
        let temp = temp_name(target);
        let mut remote = self
            .session
            .create(&temp)
            .await
            .map_err(|e| remote_missing(&temp, e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        loop {
            let n = file.read(&mut buf).await.map_err(other)?;
            if n == 0 {
                break;
            }
            if let Err(e) = remote.write_all(&buf[..n]).await {
                let _ = self.session.remove_file(&temp).await;
                return Err(other(format!("{target}: {e}")));
            }
            done += n as u64;
            progress(done, total);
        }
        remote.shutdown().await.map_err(other)?;
        drop(remote);
        if !absent && overwrite && self.exists(target).await {
            self.session.remove_file(target).await.map_err(other)?;
        }
        self.session
            .rename(&temp, target)
            .await
            .map_err(|e| other(format!("{target}: {e}")))?;
        Ok(done)
    }

    /// Downloads the guest's `source` to the local `target` (temp name, then rename).
    pub async fn download_file(
        &self,
        source: &str,
        target: &Path,
        overwrite: bool,
        progress: Progress<'_>,
    ) -> Result<u64, ClientError> {
        let dir = local_parent(target);
        std::fs::create_dir_all(dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
        self.download_one(source, target, overwrite, None, progress)
            .await
    }

    /// One download into an existing directory, put in place at once or with its tree's
    /// `landing`. What is copied is the file as large as it was when opened (as rsync
    /// does): bytes appended meanwhile are not waited for, and no read is spent finding
    /// the end. Small files are read whole and written in one go off the runtime; larger
    /// ones stream.
    async fn download_one(
        &self,
        source: &str,
        target: &Path,
        overwrite: bool,
        landing: Option<&Landing>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, ClientError> {
        if !overwrite && std::fs::symlink_metadata(target).is_ok() {
            return Err(ClientError::Exists(format!(
                "{} exists (use --overwrite to replace it)",
                target.display()
            )));
        }
        let remote = self
            .session
            .open(source)
            .await
            .map_err(|e| remote_missing(source, e))?;
        let size = remote
            .metadata()
            .await
            .map_err(|e| remote_missing(source, e))?
            .size;
        let total = size.unwrap_or(0);
        let mut remote = remote.take(size.unwrap_or(u64::MAX));
        let temp = local_temp_name(target);
        let done = if size.is_some_and(|size| size <= SMALL_FILE) {
            let mut data = Vec::with_capacity(total as usize);
            remote.read_to_end(&mut data).await.map_err(other)?;
            let temp = temp.clone();
            let done = data.len() as u64;
            tokio::task::spawn_blocking(move || write_new(&temp, &data))
                .await
                .map_err(other)??;
            progress(done, total);
            done
        } else {
            let created = std::fs::File::create(&temp)
                .map_err(|e| other(format!("{}: {e}", temp.display())))?;
            let writeback = Arc::new(created.try_clone().map_err(other)?);
            let mut local = tokio::fs::File::from_std(created);
            let mut buf = vec![0u8; CHUNK];
            let (mut done, mut written_back) = (0u64, 0u64);
            let copied: Result<(), ClientError> = async {
                loop {
                    let n = remote.read(&mut buf).await.map_err(other)?;
                    if n == 0 {
                        break;
                    }
                    local.write_all(&buf[..n]).await.map_err(other)?;
                    done += n as u64;
                    progress(done, total);
                    if done - written_back >= WRITEBACK_STEP {
                        // The disk starts on what arrived while more comes (the final sync
                        // then waits for little); its errors surface at that sync.
                        local.flush().await.map_err(other)?;
                        let (file, from, len) =
                            (writeback.clone(), written_back, done - written_back);
                        tokio::task::spawn_blocking(move || {
                            egs_sys::fs::start_writeback(&file, from, len)
                        });
                        written_back = done;
                    }
                }
                local.flush().await.map_err(other)
            }
            .await;
            drop(local);
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
            done
        };
        match landing {
            Some(landing) => landing.add(temp, target.to_path_buf()).await?,
            None => land(vec![(temp, target.to_path_buf())]).await?,
        }
        Ok(done)
    }

    /// Uploads the local directory `source` as `target`: files, empty directories and
    /// symbolic links (as links); subdirectories only when `recursive`. The tree is walked
    /// first, directories are created ahead, then the files go up [`IN_FLIGHT`] at a time
    /// (each still to a temporary name, renamed when complete).
    pub async fn upload_tree(
        &self,
        source: &Path,
        target: &str,
        overwrite: bool,
        recursive: bool,
        progress: Progress<'_>,
    ) -> Result<u64, ClientError> {
        if !source.is_dir() {
            return Err(ClientError::Missing(format!(
                "{} is not a directory",
                source.display()
            )));
        }
        let tree = local_tree(source, recursive)?;
        let join = |relative: &str| {
            let base = target.trim_end_matches('/');
            if relative.is_empty() {
                base.to_string()
            } else {
                format!("{base}/{relative}")
            }
        };
        // Directories in pre-order; one created by us holds nothing yet.
        let mut fresh = std::collections::HashSet::new();
        for dir in std::iter::once(String::new()).chain(tree.dirs.iter().cloned()) {
            let parent_fresh = !dir.is_empty() && fresh.contains(parent(&dir));
            let remote = join(&dir);
            if parent_fresh || !self.exists(&remote).await {
                self.session
                    .create_dir(&remote)
                    .await
                    .map_err(|e| remote_missing(&remote, e))?;
                fresh.insert(dir);
            }
        }
        let tally = Tally::new(tree.files.iter().map(|(_, size)| size).sum(), progress);
        let uploads = tree.files.iter().map(|(relative, _)| {
            let (local, remote) = (source.join(relative), join(relative));
            let absent = fresh.contains(parent(relative));
            let tally = &tally;
            async move {
                self.upload_one(&local, &remote, overwrite, absent, &mut tally.file())
                    .await
            }
        });
        let sent = pipelined(uploads).await?;
        for (relative, link) in &tree.links {
            let remote = join(relative);
            if !fresh.contains(parent(relative)) && self.exists(&remote).await {
                if !overwrite {
                    continue;
                }
                self.session.remove_file(&remote).await.map_err(other)?;
            }
            self.session
                .symlink(link.to_string_lossy(), remote.as_str())
                .await
                .map_err(|e| other(format!("{remote}: {e}")))?;
        }
        Ok(sent)
    }

    /// Downloads the guest's directory `source` as the local `target` (see
    /// [`Sftp::upload_tree`]): listed first, local directories made, then the files come
    /// down [`IN_FLIGHT`] at a time, their sizes taken from the listings.
    pub async fn download_tree(
        &self,
        source: &str,
        target: &Path,
        overwrite: bool,
        recursive: bool,
        progress: Progress<'_>,
    ) -> Result<u64, ClientError> {
        let mut files = Vec::new();
        let mut links = Vec::new();
        let mut pending = vec![(
            source.trim_end_matches('/').to_string(),
            target.to_path_buf(),
        )];
        while let Some((remote_dir, local_dir)) = pending.pop() {
            let listing = self
                .session
                .read_dir(&remote_dir)
                .await
                .map_err(|e| remote_missing(&remote_dir, e))?;
            std::fs::create_dir_all(&local_dir)
                .map_err(|e| other(format!("{}: {e}", local_dir.display())))?;
            let mut entries: Vec<_> = listing.collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let name = entry.file_name();
                if name == "." || name == ".." {
                    continue;
                }
                let remote = format!("{remote_dir}/{name}");
                let local = local_dir.join(&name);
                let kind = entry.file_type();
                if kind.is_symlink() {
                    links.push((remote, local));
                } else if kind.is_dir() {
                    if recursive {
                        pending.push((remote, local));
                    }
                } else {
                    files.push((remote, local, entry.metadata().size.unwrap_or(0)));
                }
            }
        }
        let tally = Tally::new(files.iter().map(|(_, _, size)| size).sum(), progress);
        let landing = Landing::new();
        let downloads = files.iter().map(|(remote, local, _)| {
            let (tally, landing) = (&tally, &landing);
            async move {
                self.download_one(remote, local, overwrite, Some(landing), &mut tally.file())
                    .await
            }
        });
        let received = match pipelined(downloads).await {
            Ok(received) => landing.finish().await.map(|()| received),
            Err(e) => Err(e),
        };
        if received.is_err() {
            landing.abandon();
        }
        let received = received?;
        for (remote, local) in links {
            let link = self.session.read_link(&remote).await.map_err(other)?;
            if std::fs::symlink_metadata(&local).is_ok() {
                if !overwrite {
                    continue;
                }
                std::fs::remove_file(&local).map_err(other)?;
            }
            egs_sys::fs::symlink(std::path::Path::new(&link), &local).map_err(other)?;
        }
        Ok(received)
    }
}

/// Files transferred at once by the tree commands: enough to keep the channel busy with
/// small files (per-file round trips, not bytes, dominate those).
const IN_FLIGHT: usize = 32;

/// Runs a tree's file transfers [`IN_FLIGHT`] at a time: the bytes moved, or the first
/// error (a target that exists without `--overwrite` is a warning and skipped).
async fn pipelined(
    transfers: impl Iterator<Item = impl std::future::Future<Output = Result<u64, ClientError>>>,
) -> Result<u64, ClientError> {
    let mut running = futures_util::stream::iter(transfers).buffer_unordered(IN_FLIGHT);
    let mut moved = 0;
    while let Some(result) = running.next().await {
        moved += match result {
            Err(ClientError::Exists(m)) => {
                eprintln!("warning: {m}; skipped");
                0
            }
            other => other?,
        };
    }
    Ok(moved)
}

/// The progress of a whole tree, fed by the files transferred at once.
struct Tally<'a> {
    done: std::cell::Cell<u64>,
    total: u64,
    progress: std::cell::RefCell<Progress<'a>>,
}

impl<'a> Tally<'a> {
    fn new(total: u64, progress: Progress<'a>) -> Tally<'a> {
        Tally {
            done: std::cell::Cell::new(0),
            total,
            progress: std::cell::RefCell::new(progress),
        }
    }

    /// The progress callback of one file: its bytes added to the tree's.
    fn file(&self) -> impl FnMut(u64, u64) + use<'_, 'a> {
        let mut last = 0;
        move |n, _| {
            self.done.set(self.done.get() + n - last);
            last = n;
            (self.progress.borrow_mut())(self.done.get(), self.total);
        }
    }
}

/// The directory part of a tree-relative path (`""` at the top).
fn parent(relative: &str) -> &str {
    relative.rsplit_once('/').map_or("", |(p, _)| p)
}

/// A local tree as the upload sends it: paths relative to its root with `/`.
struct LocalTree {
    /// Subdirectories, parents before children.
    dirs: Vec<String>,
    /// Regular files (anything that is not a directory or link) with their sizes.
    files: Vec<(String, u64)>,
    /// Symbolic links and what they point to.
    links: Vec<(String, PathBuf)>,
}

/// Walks `root` (subdirectories only when `recursive`), names sorted per directory.
fn local_tree(root: &Path, recursive: bool) -> Result<LocalTree, ClientError> {
    let mut tree = LocalTree {
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
    };
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| other(format!("{}: {e}", dir.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry.file_type().map_err(other)?;
            if kind.is_symlink() {
                let link = std::fs::read_link(entry.path()).map_err(other)?;
                tree.links.push((path, link));
            } else if kind.is_dir() {
                if recursive {
                    tree.dirs.push(path.clone());
                    subdirs.push(path);
                }
            } else {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                tree.files.push((path, size));
            }
        }
        // Depth first in name order, so parents always come before their children.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree's downloads keep their temporary names until their batch is synced, then
    /// take their names; a failed download leaves neither.
    #[tokio::test]
    async fn downloads_land_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| dir.path().join(name);
        let landing = Landing::new();
        for name in ["a", "b"] {
            write_new(&file(&format!(".{name}.egs-download")), name.as_bytes()).unwrap();
            landing
                .add(file(&format!(".{name}.egs-download")), file(name))
                .await
                .unwrap();
        }
        assert!(!file("a").exists() && file(".a.egs-download").exists());
        landing.finish().await.unwrap();
        assert_eq!(std::fs::read(file("a")).unwrap(), b"a");
        assert_eq!(std::fs::read(file("b")).unwrap(), b"b");
        assert!(!file(".a.egs-download").exists() && !file(".b.egs-download").exists());

        write_new(&file(".c.egs-download"), b"c").unwrap();
        landing
            .add(file(".c.egs-download"), file("c"))
            .await
            .unwrap();
        landing.abandon();
        assert!(!file("c").exists() && !file(".c.egs-download").exists());
        landing.finish().await.unwrap();
        assert!(!file("c").exists());

        // A target that cannot take its name: the error names it, nothing is left behind.
        write_new(&file(".d.egs-download"), b"d").unwrap();
        let unreachable = file("missing-dir").join("d");
        let e = land(vec![(file(".d.egs-download"), unreachable.clone())])
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&unreachable.display().to_string()),
            "{e}"
        );
        assert!(!file(".d.egs-download").exists());
    }

    #[test]
    fn temp_names_sit_beside_the_target() {
        let t = temp_name("/srv/data/file.bin");
        assert!(t.starts_with("/srv/data/.file.bin.egs-upload-"), "{t}");
        assert!(temp_name("file").starts_with(".file.egs-upload-"));
        assert!(temp_name("/file").starts_with("/.file.egs-upload-"));
        assert!(temp_name(r"C:\users\x.bin").starts_with(r"C:\users\.x.bin.egs-upload-"));
        assert!(temp_name("/C:/x.bin").starts_with("/C:/.x.bin.egs-upload-"));
        let local = local_temp_name(Path::new("dir/x.bin"));
        assert_eq!(local.parent(), Some(Path::new("dir")));
        let local = local.file_name().unwrap().to_string_lossy().into_owned();
        assert!(local.starts_with(".x.bin.egs-download-"), "{local}");
        assert_ne!(
            local_temp_name(Path::new("x")),
            local_temp_name(Path::new("x"))
        );
        assert_eq!(
            local_temp_name(Path::new("x")).parent(),
            Some(Path::new("."))
        );
    }
}
