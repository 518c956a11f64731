//! Files: the one way EGS writes state — atomically, so a crash leaves either the old
//! content or the new, never a torn file.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Symbolic links followed while resolving one path before giving up (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Where `path` lands when `root` is treated as `/`, as `openat2(RESOLVE_IN_ROOT)` resolves
/// it: every symbolic link on the way (the last component included) is followed *inside*
/// `root` — an absolute target starts again at `root`, `..` stops at `root` — so the result
/// is always below `root`, whatever links a sandbox image holds (`/var/run -> /run`, or a
/// hostile `etc/link -> /elsewhere`). Components that do not exist yet are taken as they
/// are. Too many links is an error (`ELOOP`'s meaning).
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut pending: VecDeque<OsString> = names(path).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = root.join(resolved.iter().collect::<PathBuf>()).join(&name);
        let is_link = fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            resolved.push(name);
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: more than {MAX_SYMLINK_HOPS} symbolic links",
                    path.display()
                ),
            ));
        }
        let target = fs::read_link(&candidate)?;
        if target.has_root() {
            resolved.clear();
        }
        for (i, part) in names(&target).enumerate() {
            pending.insert(i, part);
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

/// Where `path` (read from the root: `/etc/x`, `etc/x`) lands for the system at `root`.
/// For the running system (`root` is `/`) it is the path as it is: its links are the
/// system's own (and an atomic write replaces a final link rather than following it).
/// Below any other root, links are followed inside it ([`resolve_in_root`]).
pub fn below_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    if root == Path::new("/") {
        return Ok(root.join(names(path).collect::<PathBuf>()));
    }
    resolve_in_root(root, path)
}

/// The names of a path's components (`.`, roots and prefixes dropped; `..` kept).
fn names(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::Prefix(_) | Component::RootDir | Component::CurDir => None,
    })
}

/// Writes `data` to `path` atomically with permission bits `mode` (Unix; ignored on other
/// systems): a temporary file in the same directory is written, flushed to disk and
/// renamed over `path`, then the directory entry is flushed. Parent directories must exist.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let temp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = create_with_mode(&temp, mode)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes what was written to `files` durable at once: on Linux one `syncfs` per
/// filesystem they lie on, instead of an fsync each (a tree of small files costs one
/// journal commit, not one per file); a single file, and every file elsewhere, is
/// flushed by itself.
pub fn sync_files(files: &[PathBuf]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if files.len() > 1 {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let mut synced = std::collections::HashSet::new();
        for file in files {
            if synced.insert(fs::metadata(file)?.dev()) {
                let opened = File::open(file)?;
                // SAFETY: syncfs takes any open descriptor; `opened` outlives the call.
                if unsafe { libc::syncfs(opened.as_raw_fd()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        return Ok(());
    }
    for file in files {
        OpenOptions::new().write(true).open(file)?.sync_all()?;
    }
    Ok(())
}

/// Starts writing `len` bytes of `file` from `offset` to disk without waiting (Linux's
/// `sync_file_range`; nothing elsewhere): a large file's final sync then has little left
/// to do, because the disk worked while the rest arrived. Durability still needs a sync.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        // SAFETY: a plain system call on an open descriptor owned by `file`.
        if unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        Ok(())
    }
}

#[cfg(unix)]
fn create_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have removed bits; set exactly what was asked for.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(not(unix))]
fn create_with_mode(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Sets permission bits (Unix; ignored elsewhere).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Sets permission bits of an open file (Unix; ignored elsewhere, as [`set_mode`]).
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Permission bits of a file (Unix; `None` elsewhere or when it cannot be read).
pub fn mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Sets owner and group by numeric id, not following a final symlink (Unix; ignored
/// elsewhere).
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, uid, gid);
        Ok(())
    }
}

/// Creates (or replaces) a symbolic link at `link` pointing to `target`.
pub fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    match fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(unix))]
    {
        let _ = target;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "symbolic links are not implemented on this platform yet",
        ))
    }
}

/// Creates a symbolic link at `link` pointing to `target` (an error on systems without
/// them).
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(unix))]
    {
        let _ = (target, link);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "symbolic links are not implemented on this platform yet",
        ))
    }
}

/// Sets owner and/or group by numeric id, following symlinks (Unix; an error elsewhere,
/// where files are owned through ACLs).
pub fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::chown(path, uid, gid)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, uid, gid);
        Err(no_numeric_owners())
    }
}

/// Sets owner and/or group of an open file (Unix; an error elsewhere).
pub fn fchown(file: &File, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::fchown(file, uid, gid)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, uid, gid);
        Err(no_numeric_owners())
    }
}

#[cfg(not(unix))]
fn no_numeric_owners() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "numeric owners (uid/gid) do not exist on this platform",
    )
}

/// Permission bits for files `options` creates (Unix; Windows has no mode bits and keeps
/// the directory's inherited ACL).
pub fn create_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        options
    }
}

/// Opens without waiting for a peer: a FIFO opens at once (or fails when nobody reads it)
/// instead of blocking the caller until someone opens the other end (Unix `O_NONBLOCK`;
/// regular files ignore the flag). Windows opens never wait this way.
pub fn no_wait(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK)
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// Permission bits for directories `builder` creates (Unix; as [`create_mode`] elsewhere).
pub fn dir_mode(builder: &mut fs::DirBuilder, mode: u32) -> &mut fs::DirBuilder {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        builder
    }
}

/// Reads at `offset` without moving a shared cursor (several SFTP requests on one handle).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// Writes all of `data` at `offset`.
pub fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        let _ = (&mut data, &mut offset);
        std::os::unix::fs::FileExt::write_all_at(file, data, offset)
    }
    #[cfg(windows)]
    {
        while !data.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// The DACL of private files on Windows (SDDL): protected (nothing inherited), full
/// control for SYSTEM and Administrators only, inherited by what is created inside.
pub const PRIVATE_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Makes `path` (a file or directory holding keys) readable by its owner only: Unix modes
/// are set by the writers (0600/0700), so this does nothing there; on Windows it sets
/// [`PRIVATE_SDDL`], as the original protects its key folder.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        windows_acl::set_dacl(path, PRIVATE_SDDL)
    }
    #[cfg(not(windows))]
    {
        let _ = path;
        Ok(())
    }
}

/// The DACL (SDDL) standing for a POSIX mode on Windows, as the original maps it: the
/// owner's bits to the file's owner (`OW`, Owner Rights), the group's to Users (`BU`), the
/// others' to Everyone (`WD`), read/write/execute to the generic file rights; SYSTEM and
/// Administrators keep full control; protected, so nothing inherited widens it.
pub fn mode_sddl(mode: u32) -> String {
    let mut sddl = String::from("D:P(A;;FA;;;SY)(A;;FA;;;BA)");
    for (shift, trustee) in [(6, "OW"), (3, "BU"), (0, "WD")] {
        let bits = (mode >> shift) & 0o7;
        let rights: String = [(4, "FR"), (2, "FW"), (1, "FX")]
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, right)| *right)
            .collect();
        if !rights.is_empty() {
            sddl.push_str(&format!("(A;;{rights};;;{trustee})"));
        }
    }
    sddl
}

/// Applies [`mode_sddl`]`(mode)` to `path` (Windows only; `Unsupported` elsewhere, where
/// modes are modes).
pub fn set_mode_as_acl(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(windows)]
    {
        windows_acl::set_dacl(path, &mode_sddl(mode))
    }
    #[cfg(not(windows))]
    {
        let _ = (path, mode);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "access control lists are set on Windows only",
        ))
    }
}

/// Makes the local account `name` the owner of `path` (Windows only; `Unsupported`
/// elsewhere, where [`set_owner`] takes ids).
pub fn set_owner_name(path: &Path, name: &str) -> io::Result<()> {
    #[cfg(windows)]
    {
        windows_acl::set_owner(path, name)
    }
    #[cfg(not(windows))]
    {
        let _ = (path, name);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "owners are set by name on Windows only",
        ))
    }
}

#[cfg(windows)]
mod windows_acl {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT,
    };
    use windows_sys::Win32::Security::{
        GetSecurityDescriptorDacl, LookupAccountNameW, ACL, DACL_SECURITY_INFORMATION,
        OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    };

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// A security descriptor read from SDDL, freed when dropped.
    struct Descriptor(PSECURITY_DESCRIPTOR);

    impl Descriptor {
        fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
            let sddl = wide(sddl.as_ref());
            let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
            // SAFETY: `sddl` is NUL-terminated; the descriptor is allocated by the call
            // and freed by Drop.
            let converted = unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    sddl.as_ptr(),
                    SDDL_REVISION_1,
                    &mut descriptor,
                    std::ptr::null_mut(),
                )
            };
            if converted == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Descriptor(descriptor))
        }
    }

    impl Drop for Descriptor {
        fn drop(&mut self) {
            // SAFETY: allocated by the conversion in from_sddl, freed once.
            unsafe { LocalFree(self.0) };
        }
    }

    /// Sets the DACL written as `sddl` on `path`, protected from inheritance.
    pub fn set_dacl(path: &Path, sddl: &str) -> io::Result<()> {
        let in_context =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let descriptor = Descriptor::from_sddl(sddl).map_err(in_context)?;
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: `descriptor` is valid while held; the out-pointers are writable.
        let found = unsafe {
            GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted)
        };
        if found == 0 || present == 0 {
            return Err(in_context(io::Error::other("the DACL did not convert")));
        }
        let path_w = wide(path.as_os_str());
        // SAFETY: `path_w` is NUL-terminated; `dacl` points into `descriptor`, held here.
        let set = unsafe {
            SetNamedSecurityInfoW(
                path_w.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        };
        if set != ERROR_SUCCESS {
            return Err(in_context(io::Error::from_raw_os_error(set as i32)));
        }
        Ok(())
    }

    /// Looks `name` up (`LookupAccountNameW`) and makes it the owner of `path`.
    pub fn set_owner(path: &Path, name: &str) -> io::Result<()> {
        let in_context = |e: io::Error| {
            io::Error::new(e.kind(), format!("{}: owner {name}: {e}", path.display()))
        };
        let name_w = wide(name.as_ref());
        let mut sid = vec![0u8; 128];
        let mut sid_len = sid.len() as u32;
        let mut domain = vec![0u16; 256];
        let mut domain_len = domain.len() as u32;
        let mut kind = 0;
        // SAFETY: the buffers are as long as the lengths passed; the name is NUL-terminated.
        let found = unsafe {
            LookupAccountNameW(
                std::ptr::null(),
                name_w.as_ptr(),
                sid.as_mut_ptr().cast(),
                &mut sid_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut kind,
            )
        };
        if found == 0 {
            return Err(in_context(io::Error::last_os_error()));
        }
        let path_w = wide(path.as_os_str());
        // SAFETY: `sid` holds the SID just looked up; `path_w` is NUL-terminated.
        let set = unsafe {
            SetNamedSecurityInfoW(
                path_w.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION,
                sid.as_mut_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if set != ERROR_SUCCESS {
            return Err(in_context(io::Error::from_raw_os_error(set as i32)));
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use windows_sys::Win32::Security::Authorization::ConvertSecurityDescriptorToStringSecurityDescriptorW;

        /// `sddl` read as Windows reads it, and written back.
        fn round_trip(sddl: &str) -> String {
            let descriptor = Descriptor::from_sddl(sddl).unwrap();
            let mut text: *mut u16 = std::ptr::null_mut();
            let mut length = 0u32;
            // SAFETY: `descriptor` is valid; the string is allocated by the call.
            let ok = unsafe {
                ConvertSecurityDescriptorToStringSecurityDescriptorW(
                    descriptor.0,
                    SDDL_REVISION_1,
                    DACL_SECURITY_INFORMATION,
                    &mut text,
                    &mut length,
                )
            };
            assert_ne!(ok, 0, "{}", io::Error::last_os_error());
            // SAFETY: `text` holds `length` UTF-16 units written by the call.
            let units = unsafe { std::slice::from_raw_parts(text, length as usize) };
            let back = String::from_utf16_lossy(units)
                .trim_end_matches('\0')
                .to_string();
            // SAFETY: allocated by the call above, freed once.
            unsafe { LocalFree(text.cast()) };
            back
        }

        /// Wine accepts the DACL but keeps no ACLs on its Unix files, so what is checked
        /// here is the DACL itself (as Windows parses it) and that setting it is accepted.
        #[test]
        fn private_files_are_for_system_and_administrators_only() {
            assert_eq!(round_trip(crate::fs::PRIVATE_SDDL), crate::fs::PRIVATE_SDDL);
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("key");
            std::fs::write(&key, b"secret").unwrap();
            crate::fs::make_private(&key).unwrap();
            crate::fs::make_private(dir.path()).unwrap();
        }

        /// The mode DACLs parse as Windows parses them (it writes a combination of
        /// generic rights back as their mask: `FRFW` is 0x120089 | 0x120116) and are
        /// accepted on a file.
        #[test]
        fn modes_become_dacls_windows_reads() {
            let combined = |sddl: String| {
                sddl.replace("FRFWFX", "0x1201bf")
                    .replace("FRFW", "0x12019f")
                    .replace("FRFX", "0x1200a9")
                    .replace("FWFX", "0x1201b6")
            };
            for mode in [0o644, 0o600, 0o755, 0o000, 0o777, 0o351] {
                let sddl = crate::fs::mode_sddl(mode);
                assert_eq!(round_trip(&sddl), combined(sddl), "{mode:o}");
            }
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("f");
            std::fs::write(&file, b"x").unwrap();
            crate::fs::set_mode_as_acl(&file, 0o640).unwrap();
            let e = crate::fs::set_owner_name(&file, "no-such-user-egs").unwrap_err();
            assert!(e.to_string().contains("owner no-such-user-egs"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_synced_together_or_the_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.path().join(n)).collect();
        for file in &files {
            fs::write(file, b"x").unwrap();
        }
        sync_files(&files).unwrap();
        sync_files(&files[..1]).unwrap();
        sync_files(&[]).unwrap();
        let mut with_missing = files.clone();
        with_missing.push(dir.path().join("gone"));
        assert_eq!(
            sync_files(&with_missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn modes_map_to_owner_users_and_everyone() {
        assert_eq!(
            mode_sddl(0o644),
            "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FRFW;;;OW)(A;;FR;;;BU)(A;;FR;;;WD)"
        );
        assert_eq!(
            mode_sddl(0o750),
            "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FRFWFX;;;OW)(A;;FRFX;;;BU)"
        );
        assert_eq!(mode_sddl(0o000), "D:P(A;;FA;;;SY)(A;;FA;;;BA)");
        // setuid and friends have no NTFS meaning.
        assert_eq!(mode_sddl(0o4700), mode_sddl(0o700));
    }

    /// Links inside a root are followed inside it: absolute targets restart at the root,
    /// `..` stops there, loops end in an error; nothing resolves outside.
    #[cfg(unix)]
    #[test]
    fn symlinks_resolve_inside_the_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("elsewhere");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("etc/link")).unwrap();
        symlink("/run", root.join("var-run")).unwrap();
        symlink("../../../../..", root.join("etc/up")).unwrap();
        symlink("loop-b", root.join("loop-a")).unwrap();
        symlink("loop-a", root.join("loop-b")).unwrap();
        symlink("/etc/link/f", root.join("last")).unwrap();
        let r = |p: &str| resolve_in_root(&root, Path::new(p));
        // The absolute target /tmp/.../elsewhere is read as <root>/tmp/.../elsewhere.
        assert_eq!(
            r("/etc/link/f").unwrap(),
            root.join(outside.strip_prefix("/").unwrap()).join("f")
        );
        assert_eq!(r("/var-run/x.pid").unwrap(), root.join("run/x.pid"));
        assert_eq!(r("/etc/up/etc/passwd").unwrap(), root.join("etc/passwd"));
        assert_eq!(r("/new/dir/file").unwrap(), root.join("new/dir/file"));
        assert!(r("/last").unwrap().starts_with(&root));
        assert!(r("/loop-a/x")
            .unwrap_err()
            .to_string()
            .contains("symbolic links"));
    }

    #[test]
    fn replaces_content_with_exact_mode_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old", 0o600).unwrap();
        write_atomic(&path, b"new", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
                0o640
            );
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("missing/x"), b"", 0o600).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
