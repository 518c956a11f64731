//! Local accounts and groups of a Windows machine (netapi32: `NetUserAdd`,
//! `NetUserSetInfo`, `NetLocalGroupAdd`, `NetLocalGroupAddMembers`), and the localized
//! name of the built-in Administrators group. Passwords travel only in memory, never in
//! argv or messages, and their buffers are zeroed after the call. Linux provisions
//! accounts with shadow-utils (`egs_provision`): every call here is `Unsupported` there.

use std::io;

/// A netapi32 status as an error that names the call and the account.
pub fn net_error(call: &str, name: &str, status: u32) -> io::Error {
    let (kind, text) = match status {
        2221 => (io::ErrorKind::NotFound, "no such user"),
        2220 | 1376 => (io::ErrorKind::NotFound, "no such group"),
        2224 => (io::ErrorKind::AlreadyExists, "the user exists"),
        2223 | 1379 => (io::ErrorKind::AlreadyExists, "the group exists"),
        2245 => (
            io::ErrorKind::InvalidInput,
            "the password does not meet the password policy",
        ),
        5 => (io::ErrorKind::PermissionDenied, "access denied"),
        87 => (io::ErrorKind::InvalidInput, "invalid parameter"),
        1332 => (io::ErrorKind::NotFound, "no such account"),
        _ => (io::ErrorKind::Other, "failed"),
    };
    io::Error::new(kind, format!("{call} {name}: {text} (status {status})"))
}

/// A password no one knows that meets Windows' complexity rules (upper, lower, digit,
/// symbol; 32 characters): what a new account gets until cloud-config sets one.
pub fn random_password() -> io::Result<String> {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"!#%+-.:=?@_~",
    ];
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(random
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let set = SETS[i % SETS.len()];
            set[*r as usize % set.len()] as char
        })
        .collect())
}

pub use imp::{
    add_member, administrators_group, create_group, create_user, expire_password, group_exists,
    set_disabled, set_full_name, set_password, user_exists,
};

#[cfg(not(windows))]
mod imp {
    use std::io;

    fn unsupported<T>() -> io::Result<T> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Windows accounts exist only on Windows",
        ))
    }

    /// Whether the local user `name` exists.
    pub fn user_exists(_name: &str) -> io::Result<bool> {
        unsupported()
    }
    /// Creates the local user `name` with `password`.
    pub fn create_user(_name: &str, _password: &str) -> io::Result<()> {
        unsupported()
    }
    /// Sets the password of `name`.
    pub fn set_password(_name: &str, _password: &str) -> io::Result<()> {
        unsupported()
    }
    /// Sets the full name of `name`.
    pub fn set_full_name(_name: &str, _full_name: &str) -> io::Result<()> {
        unsupported()
    }
    /// Disables or enables `name`.
    pub fn set_disabled(_name: &str, _disabled: bool) -> io::Result<()> {
        unsupported()
    }
    /// Makes the password of `name` expire: it must be changed at the next logon.
    pub fn expire_password(_name: &str) -> io::Result<()> {
        unsupported()
    }
    /// Whether the local group `name` exists.
    pub fn group_exists(_name: &str) -> io::Result<bool> {
        unsupported()
    }
    /// Creates the local group `name`.
    pub fn create_group(_name: &str) -> io::Result<()> {
        unsupported()
    }
    /// Adds `user` to `group` (already a member is fine).
    pub fn add_member(_group: &str, _user: &str) -> io::Result<()> {
        unsupported()
    }
    /// The localized name of the built-in Administrators group (`S-1-5-32-544`).
    pub fn administrators_group() -> io::Result<String> {
        unsupported()
    }
}

#[cfg(windows)]
mod imp {
    use super::net_error;
    use std::io;
    use std::ptr::{null, null_mut};
    use windows_sys::Win32::NetworkManagement::NetManagement::{
        NetApiBufferFree, NetLocalGroupAdd, NetLocalGroupAddMembers, NetLocalGroupGetInfo,
        NetUserAdd, NetUserGetInfo, NetUserSetInfo, LOCALGROUP_INFO_0, LOCALGROUP_MEMBERS_INFO_3,
        UF_ACCOUNTDISABLE, UF_SCRIPT, USER_INFO_1, USER_INFO_1003, USER_INFO_1008, USER_INFO_1011,
        USER_INFO_3, USER_PRIV_USER,
    };
    use windows_sys::Win32::Security::{
        CreateWellKnownSid, LookupAccountSidW, WinBuiltinAdministratorsSid, SID_NAME_USE,
    };

    const OK: u32 = 0;
    const MEMBER_ALREADY: u32 = 1378; // ERROR_MEMBER_IN_ALIAS
    const NO_USER: u32 = 2221;
    const NO_GROUP: u32 = 2220;
    const NO_ALIAS: u32 = 1376;

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// A wide copy of a secret, zeroed when dropped.
    struct Secret(Vec<u16>);

    impl Drop for Secret {
        fn drop(&mut self) {
            for c in self.0.iter_mut() {
                // SAFETY: a valid, aligned element of our own buffer.
                unsafe { std::ptr::write_volatile(c, 0) };
            }
        }
    }

    fn user_info<T>(name: &str, level: u32, info: &T, call: &str) -> io::Result<()> {
        let user = wide(name);
        let mut parm = 0;
        // SAFETY: `info` is the structure `level` names, alive for the call.
        let status = unsafe {
            NetUserSetInfo(
                null(),
                user.as_ptr(),
                level,
                info as *const T as *const u8,
                &mut parm,
            )
        };
        match status {
            OK => Ok(()),
            s => Err(net_error(call, name, s)),
        }
    }

    pub fn user_exists(name: &str) -> io::Result<bool> {
        let user = wide(name);
        let mut buffer = null_mut();
        // SAFETY: netapi32 allocates `buffer`, freed below.
        let status = unsafe { NetUserGetInfo(null(), user.as_ptr(), 0, &mut buffer) };
        if !buffer.is_null() {
            // SAFETY: allocated by netapi32.
            unsafe { NetApiBufferFree(buffer as *const _) };
        }
        match status {
            OK => Ok(true),
            NO_USER => Ok(false),
            s => Err(net_error("NetUserGetInfo", name, s)),
        }
    }

    pub fn create_user(name: &str, password: &str) -> io::Result<()> {
        let mut user = wide(name);
        let mut secret = Secret(wide(password));
        let info = USER_INFO_1 {
            usri1_name: user.as_mut_ptr(),
            usri1_password: secret.0.as_mut_ptr(),
            usri1_priv: USER_PRIV_USER,
            usri1_flags: UF_SCRIPT,
            ..USER_INFO_1::default()
        };
        let mut parm = 0;
        // SAFETY: `info` points into buffers alive for the call.
        let status = unsafe {
            NetUserAdd(
                null(),
                1,
                &info as *const USER_INFO_1 as *const u8,
                &mut parm,
            )
        };
        drop(secret);
        match status {
            OK => Ok(()),
            s => Err(net_error("NetUserAdd", name, s)),
        }
    }

    pub fn set_password(name: &str, password: &str) -> io::Result<()> {
        let mut secret = Secret(wide(password));
        let info = USER_INFO_1003 {
            usri1003_password: secret.0.as_mut_ptr(),
        };
        user_info(name, 1003, &info, "setting the password of")
    }

    pub fn set_full_name(name: &str, full_name: &str) -> io::Result<()> {
        let mut full = wide(full_name);
        let info = USER_INFO_1011 {
            usri1011_full_name: full.as_mut_ptr(),
        };
        user_info(name, 1011, &info, "setting the full name of")
    }

    pub fn set_disabled(name: &str, disabled: bool) -> io::Result<()> {
        let user = wide(name);
        let mut buffer = null_mut();
        // SAFETY: netapi32 allocates `buffer` (a USER_INFO_1), freed below.
        let status = unsafe { NetUserGetInfo(null(), user.as_ptr(), 1, &mut buffer) };
        if status != OK {
            return Err(net_error("NetUserGetInfo", name, status));
        }
        // SAFETY: level 1 returns a USER_INFO_1.
        let flags = unsafe { (*(buffer as *const USER_INFO_1)).usri1_flags };
        // SAFETY: allocated by netapi32.
        unsafe { NetApiBufferFree(buffer as *const _) };
        let flags = if disabled {
            flags | UF_ACCOUNTDISABLE
        } else {
            flags & !UF_ACCOUNTDISABLE
        };
        let info = USER_INFO_1008 {
            usri1008_flags: flags,
        };
        user_info(name, 1008, &info, "setting the account flags of")
    }

    /// Level 3 carries `usri3_password_expired`; read and written back whole, with the
    /// password field NULL (unchanged), as `net user /logonpasswordchg:yes` does.
    pub fn expire_password(name: &str) -> io::Result<()> {
        let user = wide(name);
        let mut buffer = null_mut();
        // SAFETY: netapi32 allocates `buffer` (a USER_INFO_3), freed below.
        let status = unsafe { NetUserGetInfo(null(), user.as_ptr(), 3, &mut buffer) };
        if status != OK {
            return Err(net_error("NetUserGetInfo", name, status));
        }
        // SAFETY: level 3 returns a USER_INFO_3; its strings stay valid until the free.
        let result = unsafe {
            let info = &mut *(buffer as *mut USER_INFO_3);
            info.usri3_password = null_mut();
            info.usri3_password_expired = 1;
            user_info(name, 3, info, "expiring the password of")
        };
        // SAFETY: allocated by netapi32.
        unsafe { NetApiBufferFree(buffer as *const _) };
        result
    }

    pub fn group_exists(name: &str) -> io::Result<bool> {
        let group = wide(name);
        let mut buffer = null_mut();
        // SAFETY: netapi32 allocates `buffer`, freed below.
        let status = unsafe { NetLocalGroupGetInfo(null(), group.as_ptr(), 0, &mut buffer) };
        if !buffer.is_null() {
            // SAFETY: allocated by netapi32.
            unsafe { NetApiBufferFree(buffer as *const _) };
        }
        match status {
            OK => Ok(true),
            NO_GROUP | NO_ALIAS => Ok(false),
            s => Err(net_error("NetLocalGroupGetInfo", name, s)),
        }
    }

    pub fn create_group(name: &str) -> io::Result<()> {
        let mut group = wide(name);
        let info = LOCALGROUP_INFO_0 {
            lgrpi0_name: group.as_mut_ptr(),
        };
        let mut parm = 0;
        // SAFETY: `info` points into a buffer alive for the call.
        let status = unsafe {
            NetLocalGroupAdd(
                null(),
                0,
                &info as *const LOCALGROUP_INFO_0 as *const u8,
                &mut parm,
            )
        };
        match status {
            OK => Ok(()),
            s => Err(net_error("NetLocalGroupAdd", name, s)),
        }
    }

    pub fn add_member(group: &str, user: &str) -> io::Result<()> {
        let group_name = wide(group);
        let mut member = wide(user);
        let info = LOCALGROUP_MEMBERS_INFO_3 {
            lgrmi3_domainandname: member.as_mut_ptr(),
        };
        // SAFETY: one entry, pointing into a buffer alive for the call.
        let status = unsafe {
            NetLocalGroupAddMembers(
                null(),
                group_name.as_ptr(),
                3,
                &info as *const LOCALGROUP_MEMBERS_INFO_3 as *const u8,
                1,
            )
        };
        match status {
            OK | MEMBER_ALREADY => Ok(()),
            s => Err(net_error(
                "NetLocalGroupAddMembers",
                &format!("{user} to {group}"),
                s,
            )),
        }
    }

    pub fn administrators_group() -> io::Result<String> {
        let mut sid = [0u8; 68]; // SECURITY_MAX_SID_SIZE
        let mut size = sid.len() as u32;
        // SAFETY: `sid` has `size` bytes.
        if unsafe {
            CreateWellKnownSid(
                WinBuiltinAdministratorsSid,
                null_mut(),
                sid.as_mut_ptr() as *mut _,
                &mut size,
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut name = [0u16; 256];
        let mut domain = [0u16; 256];
        let (mut name_len, mut domain_len) = (name.len() as u32, domain.len() as u32);
        let mut kind: SID_NAME_USE = 0;
        // SAFETY: both buffers have the lengths passed.
        if unsafe {
            LookupAccountSidW(
                null(),
                sid.as_mut_ptr() as *mut _,
                name.as_mut_ptr(),
                &mut name_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut kind,
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(String::from_utf16_lossy(&name[..name_len as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_call_and_never_a_password() {
        let e = net_error("NetUserAdd", "alice", 2245);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "NetUserAdd alice: the password does not meet the password policy (status 2245)"
        );
        assert_eq!(
            net_error("NetLocalGroupAddMembers", "bob to Admins", 1376).kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn random_passwords_meet_the_complexity_rules() {
        let a = random_password().unwrap();
        assert_eq!(a.len(), 32);
        for class in [
            |c: char| c.is_ascii_uppercase(),
            |c: char| c.is_ascii_lowercase(),
            |c: char| c.is_ascii_digit(),
            |c: char| !c.is_ascii_alphanumeric(),
        ] {
            assert!(a.chars().any(class), "{a}");
        }
        assert_ne!(a, random_password().unwrap());
    }

    /// Under Wine only (a real Windows machine would get a real account): the calls reach
    /// netapi32 and the administrators group's name comes from its SID.
    #[cfg(windows)]
    #[test]
    fn accounts_through_netapi32_under_wine() {
        if std::env::var_os("WINEPREFIX").is_none() {
            return;
        }
        let name = administrators_group().unwrap();
        assert_eq!(name, "Administrators");
        assert!(group_exists(&name).unwrap());
        let outcome = create_user("egs-test-user", &random_password().unwrap());
        eprintln!("NetUserAdd under Wine: {outcome:?}");
        // Wine's netapi32 has no level-3 user information: the call reaches it and its
        // answer comes back as an error naming the call, never a panic.
        match expire_password("egs-test-user") {
            Ok(()) => {}
            Err(e) => assert!(e.to_string().contains("egs-test-user"), "{e}"),
        }
    }
}
