//! The machine's running host name, and what operating system it runs. The name is set
//! with `sethostname(2)` directly, as cloud-init's Debian distro does through
//! `hostname(1)`: it needs neither D-Bus nor systemd-hostnamed, which a minimal guest (or
//! one early in boot) does not have. The static name is the caller's business
//! (`/etc/hostname`).

use std::path::Path;

/// Whether this process runs with administrative rights (Windows: elevated, in
/// Administrators; Unix: as root).
pub fn is_elevated() -> bool {
    #[cfg(windows)]
    {
        // SAFETY: no arguments; reads the calling process's token.
        unsafe { windows_sys::Win32::UI::Shell::IsUserAnAdmin() != 0 }
    }
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}

/// The operating system as the host is shown it: on Linux the distribution's
/// `PRETTY_NAME` (from `etc/os-release` below `root`) and the kernel release; on Windows
/// the product name and build from the registry (`Windows Server 2022 Datacenter (build
/// 20348)`).
pub fn operating_system(root: &Path) -> String {
    if cfg!(windows) {
        let _ = root;
        let values = crate::registry::read_strings(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion")
            .unwrap_or_default();
        let get = |name: &str| {
            values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let product = get("ProductName").unwrap_or_else(|| "Windows".into());
        return match get("CurrentBuild").or_else(|| get("CurrentBuildNumber")) {
            Some(build) => format!("{product} (build {build})"),
            None => product,
        };
    }
    let pretty = std::fs::read_to_string(root.join("etc/os-release"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| "Linux".into());
    match pretty {
        Some(p) => format!("{p} ({kernel})"),
        None => kernel,
    }
}

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

/// Sets the computer's DNS host name (`SetComputerNameExW`, physical DNS host name; the
/// NetBIOS name follows from it). It takes effect at the next boot.
#[cfg(windows)]
pub fn set_hostname(name: &str) -> std::io::Result<()> {
    use windows_sys::Win32::System::SystemInformation::{
        ComputerNamePhysicalDnsHostname, SetComputerNameExW,
    };
    let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: a NUL-terminated buffer alive for the call.
    if unsafe { SetComputerNameExW(ComputerNamePhysicalDnsHostname, wide.as_ptr()) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The running (active) DNS host name (`GetComputerNameExW`).
#[cfg(windows)]
pub fn hostname() -> std::io::Result<String> {
    use windows_sys::Win32::System::SystemInformation::{
        ComputerNamePhysicalDnsHostname, GetComputerNameExW,
    };
    let mut buffer = [0u16; 256];
    let mut size = buffer.len() as u32;
    // SAFETY: `buffer` has `size` elements.
    if unsafe {
        GetComputerNameExW(
            ComputerNamePhysicalDnsHostname,
            buffer.as_mut_ptr(),
            &mut size,
        )
    } == 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(String::from_utf16_lossy(&buffer[..size as usize]))
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
