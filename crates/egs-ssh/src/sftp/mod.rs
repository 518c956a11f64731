//! The SFTP subsystem's filesystem layer (protocol version 3, as OpenSSH's `sftp-server`
//! speaks it): files, directories, attributes, rename, symlinks, on the guest's real
//! filesystem as the service's user. Relative paths start at the service's home; on
//! Windows names look as Win32-OpenSSH presents them (`/C:/Users/…`, see [`paths`]).
//! Extensions: `posix-rename@openssh.com` (rename over an existing file, which `egs-tool`
//! uses to put a finished upload in place) and `fsync@openssh.com`.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

pub mod paths;

use paths::{Local, Style};

/// Open handles per session (bounded, like OpenSSH's own table).
const MAX_HANDLES: usize = 1024;
/// The largest read answered at once.
const MAX_READ: u32 = 256 * 1024;
/// Directory entries per `READDIR` answer.
const READDIR_BATCH: usize = 128;

enum Open {
    File(fs::File),
    /// Boxed: a Windows `ReadDir` holds a whole `WIN32_FIND_DATAW`.
    Dir(Option<Box<fs::ReadDir>>, PathBuf),
    /// Windows' `/`: the drives, until listed.
    Drives(Option<Vec<File>>),
}

/// One SFTP session.
pub struct Sftp {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next: u64,
}

/// An error answer: a status code and a message.
pub struct Failure(StatusCode, String);

impl From<Failure> for StatusReply {
    fn from(f: Failure) -> Self {
        StatusReply {
            status_code: f.0,
            error_message: Some(f.1),
            language_tag: None,
        }
    }
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    let code = match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    Failure(code, format!("{}: {e}", path.display()))
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

impl Sftp {
    /// A session whose relative paths start at `home`.
    pub fn new(home: PathBuf) -> Self {
        Self {
            home,
            handles: HashMap::new(),
            next: 0,
        }
    }

    /// What a request's name stands for. The SFTP library decodes names that are not
    /// UTF-8 lossily (each bad byte becomes U+FFFD), so such a name could stand for a
    /// different file (removing `victim\xff` would remove `victim\u{FFFD}`): it is refused
    /// instead.
    fn target(&self, p: &str) -> Result<Local, Failure> {
        if p.contains('\u{FFFD}') {
            return Err(Failure(
                StatusCode::Failure,
                format!(
                    "{}: names that are not UTF-8 are not served",
                    p.escape_default()
                ),
            ));
        }
        paths::to_local(Style::NATIVE, &self.home, p)
            .map_err(|message| Failure(StatusCode::NoSuchFile, message))
    }

    /// The file or directory a request names: anything but Windows' list of drives.
    fn path(&self, p: &str) -> Result<PathBuf, Failure> {
        match self.target(p)? {
            Local::Path(path) => Ok(path),
            Local::Drives => Err(Failure(
                StatusCode::PermissionDenied,
                format!("{p}: the list of drives is not a file or directory to change"),
            )),
        }
    }

    /// The attributes of what `name` stands for, read with `metadata` (following links
    /// or not).
    fn attrs(
        &self,
        id: u32,
        name: &str,
        metadata: fn(&Path) -> std::io::Result<fs::Metadata>,
    ) -> Result<Attrs, Failure> {
        let Local::Path(path) = self.target(name)? else {
            return Ok(drives_attrs(id));
        };
        let meta = metadata(&path).map_err(|e| io_failure(&path, e))?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    fn insert(&mut self, open: Open) -> Result<String, Failure> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(Failure(
                StatusCode::Failure,
                format!("too many open handles (at most {MAX_HANDLES})"),
            ));
        }
        self.next += 1;
        let handle = self.next.to_string();
        self.handles.insert(handle.clone(), open);
        Ok(handle)
    }

    fn file(&self, handle: &str) -> Result<&fs::File, Failure> {
        match self.handles.get(handle) {
            Some(Open::File(f)) => Ok(f),
            _ => Err(Failure(
                StatusCode::Failure,
                format!("no open file '{handle}'"),
            )),
        }
    }
}

/// Sets what `attrs` carries on `path` (chmod, chown, utimes, truncate).
fn apply(path: &Path, attrs: &FileAttributes) -> Result<(), Failure> {
    let fail = |e| io_failure(path, e);
    if let Some(size) = attrs.size {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(size))
            .map_err(fail)?;
    }
    if let Some(mode) = attrs.permissions {
        egs_sys::fs::set_mode(path, mode & 0o7777).map_err(fail)?;
    }
    if attrs.uid.is_some() || attrs.gid.is_some() {
        egs_sys::fs::chown(path, attrs.uid, attrs.gid).map_err(fail)?;
    }
    if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
        let at = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.into());
        fs::File::options()
            .write(true)
            .open(path)
            .or_else(|_| fs::File::open(path))
            .and_then(|f| {
                f.set_times(
                    fs::FileTimes::new()
                        .set_accessed(at(atime))
                        .set_modified(at(mtime)),
                )
            })
            .map_err(fail)?;
    }
    Ok(())
}

/// The attributes of Windows' `/`: a directory that can be listed, not changed.
fn drives_attrs(id: u32) -> Attrs {
    let attrs = FileAttributes {
        permissions: Some(0o040555),
        ..FileAttributes::default()
    };
    Attrs { id, attrs }
}

/// Windows' `/`: one directory entry per drive that is there (`C:`, …).
fn drives() -> Vec<File> {
    ('A'..='Z')
        .map(|letter| format!("{letter}:"))
        .filter_map(|drive| {
            let meta = fs::metadata(format!("{drive}\\")).ok()?;
            Some(File::new(drive, FileAttributes::from(&meta)))
        })
        .collect()
}

/// Lexical clean-up of an absolute path (`.`/`..` removed; a Windows drive kept), for
/// paths that do not exist.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads an SSH string at the front of `data`.
fn take_string(data: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let bytes = data.get(4..4 + len)?;
    *data = &data[4 + len..];
    String::from_utf8(bytes.to_vec()).ok()
}

impl russh_sftp::server::Handler for Sftp {
    type Error = Failure;

    fn unimplemented(&self) -> Self::Error {
        Failure(StatusCode::OpUnsupported, "not supported".into())
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut version = Version::new();
        for ext in ["posix-rename@openssh.com", "fsync@openssh.com"] {
            version.extensions.insert(ext.into(), "1".into());
        }
        Ok(version)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = self.path(&filename)?;
        let mut options = fs::OpenOptions::from(pflags);
        if !pflags.intersects(OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND) {
            options.read(true);
        }
        egs_sys::fs::create_mode(
            &mut options,
            attrs.permissions.map_or(0o666, |m| m & 0o7777),
        );
        // A FIFO, a tty or a device would block the session (or the daemon) on open or
        // read: only regular files are served.
        egs_sys::fs::no_wait(&mut options);
        let file = options.open(&path).map_err(|e| io_failure(&path, e))?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        if !regular {
            return Err(Failure(
                StatusCode::Failure,
                format!("{}: not a regular file", path.display()),
            ));
        }
        let handle = self.insert(Open::File(file))?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(Failure(
                StatusCode::Failure,
                format!("no handle '{handle}'"),
            )),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let file = self.file(&handle)?;
        let mut data = vec![0u8; len.min(MAX_READ) as usize];
        let n = egs_sys::fs::read_at(file, &mut data, offset)
            .map_err(|e| Failure(StatusCode::Failure, e.to_string()))?;
        if n == 0 && !data.is_empty() {
            return Err(Failure(StatusCode::Eof, "end of file".into()));
        }
        data.truncate(n);
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        egs_sys::fs::write_all_at(self.file(&handle)?, &data, offset)
            .map_err(|e| Failure(StatusCode::Failure, e.to_string()))?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.attrs(id, &path, |p| fs::symlink_metadata(p))
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.attrs(id, &path, |p| fs::metadata(p))
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let meta = self
            .file(&handle)?
            .metadata()
            .map_err(|e| Failure(StatusCode::Failure, e.to_string()))?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        apply(&self.path(&path)?, &attrs)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let file = self.file(&handle)?;
        let fail = |e: std::io::Error| Failure(StatusCode::Failure, e.to_string());
        if let Some(size) = attrs.size {
            file.set_len(size).map_err(fail)?;
        }
        if let Some(mode) = attrs.permissions {
            egs_sys::fs::set_file_mode(file, mode & 0o7777).map_err(fail)?;
        }
        if attrs.uid.is_some() || attrs.gid.is_some() {
            egs_sys::fs::fchown(file, attrs.uid, attrs.gid).map_err(fail)?;
        }
        if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
            let at = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.into());
            file.set_times(
                fs::FileTimes::new()
                    .set_accessed(at(atime))
                    .set_modified(at(mtime)),
            )
            .map_err(fail)?;
        }
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let open = match self.target(&path)? {
            Local::Path(path) => {
                let entries = fs::read_dir(&path).map_err(|e| io_failure(&path, e))?;
                Open::Dir(Some(Box::new(entries)), path)
            }
            Local::Drives => Open::Drives(Some(drives())),
        };
        let handle = self.insert(open)?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        if let Some(Open::Drives(drives)) = self.handles.get_mut(&handle) {
            return match drives.take() {
                Some(files) if !files.is_empty() => Ok(Name { id, files }),
                _ => Err(Failure(StatusCode::Eof, "end of directory".into())),
            };
        }
        let Some(Open::Dir(entries, dir)) = self.handles.get_mut(&handle) else {
            return Err(Failure(
                StatusCode::Failure,
                format!("no open directory '{handle}'"),
            ));
        };
        let Some(iter) = entries.as_mut() else {
            return Err(Failure(StatusCode::Eof, "end of directory".into()));
        };
        let mut files = Vec::new();
        for entry in iter.by_ref().take(READDIR_BATCH).flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let attrs = fs::symlink_metadata(dir.join(&name))
                .map(|m| FileAttributes::from(&m))
                .unwrap_or_default();
            files.push(File::new(name, attrs));
        }
        if files.is_empty() {
            *entries = None;
            return Err(Failure(StatusCode::Eof, "end of directory".into()));
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let path = self.path(&filename)?;
        fs::remove_file(&path).map_err(|e| io_failure(&path, e))?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let path = self.path(&path)?;
        egs_sys::fs::dir_mode(
            &mut std::fs::DirBuilder::new(),
            attrs.permissions.map_or(0o777, |m| m & 0o7777),
        )
        .create(&path)
        .map_err(|e| io_failure(&path, e))?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let path = self.path(&path)?;
        fs::remove_dir(&path).map_err(|e| io_failure(&path, e))?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let name = match self.target(&path)? {
            Local::Path(path) => {
                let real = fs::canonicalize(&path).unwrap_or_else(|_| normalize(&path));
                paths::to_name(Style::NATIVE, &real)
            }
            Local::Drives => "/".into(),
        };
        Ok(Name {
            id,
            files: vec![File::dummy(name)],
        })
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        // Protocol version 3 (and OpenSSH's server): never over an existing target.
        let (from, to) = (self.path(&oldpath)?, self.path(&newpath)?);
        if fs::symlink_metadata(&to).is_ok() {
            return Err(Failure(
                StatusCode::Failure,
                format!("{} exists", to.display()),
            ));
        }
        fs::rename(&from, &to).map_err(|e| io_failure(&from, e))?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let path = self.path(&path)?;
        let target = fs::read_link(&path).map_err(|e| io_failure(&path, e))?;
        Ok(Name {
            id,
            files: vec![File::dummy(paths::to_name(Style::NATIVE, &target))],
        })
    }

    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, Self::Error> {
        // OpenSSH sends (target, link name) in this order, reversed from the draft; every
        // OpenSSH-compatible server follows OpenSSH.
        let (target, link) = (linkpath, self.path(&targetpath)?);
        // The link's target is written as given: a lossily decoded one would point elsewhere.
        self.path(&target)?;
        egs_sys::fs::symlink(Path::new(&target), &link).map_err(|e| io_failure(&link, e))?;
        Ok(ok(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, Self::Error> {
        let mut rest = data.as_slice();
        let bad = || Failure(StatusCode::BadMessage, format!("malformed {request}"));
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let from = self.path(&take_string(&mut rest).ok_or_else(bad)?)?;
                let to = self.path(&take_string(&mut rest).ok_or_else(bad)?)?;
                fs::rename(&from, &to).map_err(|e| io_failure(&from, e))?;
            }
            "fsync@openssh.com" => {
                let handle = take_string(&mut rest).ok_or_else(bad)?;
                self.file(&handle)?
                    .sync_all()
                    .map_err(|e| Failure(StatusCode::Failure, e.to_string()))?;
            }
            _ => return Err(self.unimplemented()),
        }
        Ok(Packet::Status(ok(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_normalization_and_ssh_strings() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../..")), PathBuf::from("/"));
        let data = [0, 0, 0, 2, b'h', b'i', 0, 0, 0, 9];
        let mut rest = &data[..];
        assert_eq!(take_string(&mut rest).as_deref(), Some("hi"));
        assert_eq!(take_string(&mut rest), None, "length past the end");
    }
}
