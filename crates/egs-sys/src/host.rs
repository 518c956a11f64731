//! The machine's running host name. Set with `sethostname(2)` directly, as cloud-init's
//! Debian distro does through `hostname(1)`: it needs neither D-Bus nor systemd-hostnamed,
//! which a minimal guest (or one early in boot) does not have. The static name is the
//! caller's business (`/etc/hostname`).

/// Sets the running host name.
#[cfg(unix)]
pub fn set_hostname(name: &str) -> std::io::Result<()> {
    nix::unistd::sethostname(name).map_err(std::io::Error::from)
}

/// The running host name.
#[cfg(unix)]
pub fn hostname() -> std::io::Result<String> {
    nix::unistd::gethostname()
        .map_err(std::io::Error::from)
        .map(|n| n.to_string_lossy().into_owned())
}

/// Windows renames the computer through SetComputerNameEx and a reboot: not built yet.
#[cfg(windows)]
pub fn set_hostname(_name: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "setting the host name on Windows is not built yet",
    ))
}

/// The running host name.
#[cfg(windows)]
pub fn hostname() -> std::io::Result<String> {
    std::env::var("COMPUTERNAME")
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::NotFound, "COMPUTERNAME is not set"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// In a UTS namespace of this thread's own, so the machine keeps its name. Needs root
    /// (CAP_SYS_ADMIN), as the agent has.
    #[test]
    fn sets_the_running_name_without_dbus() {
        std::thread::spawn(|| {
            // SAFETY: unshare only changes the calling thread's namespaces.
            if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
                eprintln!("skipped: no permission for a UTS namespace (not root)");
                return;
            }
            super::set_hostname("egs-test-name").unwrap();
            assert_eq!(super::hostname().unwrap(), "egs-test-name");
        })
        .join()
        .unwrap();
    }
}
