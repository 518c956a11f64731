//! Whole-file locks that exclude every writer of Hyper-V KVP pool files: `hv_kvp_daemon`
//! takes `fcntl` record locks, cloud-init takes `flock`; we hold both.

use std::fs::File;
use std::io;
use std::ops::Deref;

/// An open file holding both an `flock` and an `fcntl` lock on its whole length; both are
/// released when it is dropped.
#[derive(Debug)]
pub struct LockedFile {
    #[cfg(unix)]
    inner: nix::fcntl::Flock<File>,
    #[cfg(not(unix))]
    inner: File,
}

impl Deref for LockedFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.inner
    }
}

/// Whether a lock lets others read at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Readers share; writers wait. The file must be open for reading.
    Shared,
    /// One holder only. The file must be open for writing.
    Exclusive,
}

/// Blocks until both locks are held.
pub fn lock(file: File, kind: LockKind) -> io::Result<LockedFile> {
    imp::lock(file, kind)
}

#[cfg(unix)]
mod imp {
    use super::*;
    use nix::errno::Errno;
    use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};

    pub fn lock(file: File, kind: LockKind) -> io::Result<LockedFile> {
        let arg = match kind {
            LockKind::Shared => FlockArg::LockShared,
            LockKind::Exclusive => FlockArg::LockExclusive,
        };
        let inner = loop {
            match Flock::lock(file.try_clone()?, arg) {
                Ok(locked) => break locked,
                Err((_, Errno::EINTR)) => continue,
                Err((_, e)) => return Err(e.into()),
            }
        };
        drop(file);
        let record = nix::libc::flock {
            l_type: match kind {
                LockKind::Shared => nix::libc::F_RDLCK,
                LockKind::Exclusive => nix::libc::F_WRLCK,
            } as _,
            l_whence: nix::libc::SEEK_SET as _,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        loop {
            match fcntl(&*inner, FcntlArg::F_SETLKW(&record)) {
                Ok(_) => return Ok(LockedFile { inner }),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    pub fn lock(file: File, _kind: LockKind) -> io::Result<LockedFile> {
        Ok(LockedFile { inner: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    #[cfg_attr(not(unix), ignore = "flock and fcntl peers are POSIX")]
    fn exclusive_lock_blocks_flock_and_fcntl_peers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool");
        std::fs::write(&path, b"").unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let held = lock(open(), LockKind::Exclusive).unwrap();
        // A python peer using flock (cloud-init's way) must fail to get a non-blocking lock,
        // and one using fcntl (hv_kvp_daemon's way) likewise.
        for call in [
            "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
            "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        ] {
            let script = format!("import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry:\n {call}\n print('got')\nexcept OSError:\n print('blocked')\n");
            let out = std::process::Command::new("python3")
                .arg("-c")
                .arg(&script)
                .arg(&path)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "blocked",
                "{call}"
            );
        }
        (&*held).write_all(b"x").unwrap();
        drop(held);
        let shared = lock(open(), LockKind::Shared).unwrap();
        let mut text = String::new();
        (&*shared).read_to_string(&mut text).unwrap();
        assert_eq!(text, "x");
    }
}
