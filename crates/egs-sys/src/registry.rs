//! String values under `HKEY_LOCAL_MACHINE` — where a Windows guest's Hyper-V KVP pools
//! live (`SOFTWARE\Microsoft\Virtual Machine\{External,Guest,Auto}`). Only `REG_SZ` values
//! are read or written, as the original EGS does. Other OSes have no registry: every call
//! there is an `Unsupported` error.

use std::io;

/// Whether this OS has a registry.
pub const AVAILABLE: bool = cfg!(windows);

/// The `REG_SZ` values of `HKLM\<subkey>` as (name, value), in the registry's order;
/// values of other types are skipped. The key is created when missing (as the original
/// does), so a fresh machine reads as empty rather than as an error.
pub fn read_strings(subkey: &str) -> io::Result<Vec<(String, String)>> {
    imp::read_strings(subkey)
}

/// Whether `HKLM\<subkey>` exists (opened for reading; nothing is created).
pub fn key_exists(subkey: &str) -> bool {
    imp::key_exists(subkey)
}

/// Sets `HKLM\<subkey>\<name>` to the `REG_SZ` `value`, creating the key when missing.
pub fn set_string(subkey: &str, name: &str, value: &str) -> io::Result<()> {
    imp::set_string(subkey, name, value)
}

/// Deletes `HKLM\<subkey>\<name>`; returns whether it existed.
pub fn delete_value(subkey: &str, name: &str) -> io::Result<bool> {
    imp::delete_value(subkey, name)
}

/// Deletes `HKLM\<subkey>` with everything below it (a missing key is not an error).
pub fn delete_tree(subkey: &str) -> io::Result<()> {
    imp::delete_tree(subkey)
}

#[cfg(windows)]
mod imp {
    use std::io;
    use windows_sys::Win32::Foundation::{
        ERROR_FILE_NOT_FOUND, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS, WIN32_ERROR,
    };
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegCreateKeyExW, RegDeleteKeyW, RegDeleteTreeW, RegDeleteValueW,
        RegEnumValueW, RegOpenKeyExW, RegQueryInfoKeyW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE,
        KEY_READ, KEY_WRITE, REG_OPTION_NON_VOLATILE, REG_SZ,
    };

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    fn check(code: WIN32_ERROR) -> io::Result<()> {
        if code == ERROR_SUCCESS {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(code as i32))
        }
    }

    /// An open key, closed on drop.
    struct Key(HKEY);

    impl Drop for Key {
        fn drop(&mut self) {
            // SAFETY: the handle came from RegCreateKeyExW and is closed once.
            unsafe { RegCloseKey(self.0) };
        }
    }

    fn open(subkey: &str) -> io::Result<Key> {
        let name = wide(subkey);
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `key` receives the handle.
        check(unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                name.as_ptr(),
                0,
                std::ptr::null(),
                REG_OPTION_NON_VOLATILE,
                KEY_READ | KEY_WRITE,
                std::ptr::null(),
                &mut key,
                std::ptr::null_mut(),
            )
        })?;
        Ok(Key(key))
    }

    pub fn read_strings(subkey: &str) -> io::Result<Vec<(String, String)>> {
        let key = open(subkey)?;
        let (mut max_name, mut max_data) = (0u32, 0u32);
        // SAFETY: only the two out-parameters we asked for are written; the rest are null.
        check(unsafe {
            RegQueryInfoKeyW(
                key.0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut max_name,
                &mut max_data,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        })?;
        let mut name = vec![0u16; max_name as usize + 1];
        let mut data = vec![0u8; max_data as usize + 2];
        let mut values = Vec::new();
        for index in 0.. {
            let mut name_len = name.len() as u32;
            let mut data_len = data.len() as u32;
            let mut kind = 0u32;
            // SAFETY: the buffers are as long as the lengths passed with them.
            let code = unsafe {
                RegEnumValueW(
                    key.0,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    std::ptr::null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut data_len,
                )
            };
            if code == ERROR_NO_MORE_ITEMS {
                break;
            }
            check(code)?;
            if kind != REG_SZ {
                continue;
            }
            let units: Vec<u16> = data[..data_len as usize]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
            values.push((
                String::from_utf16_lossy(&name[..name_len as usize]),
                String::from_utf16_lossy(&units[..end]),
            ));
        }
        Ok(values)
    }

    pub fn key_exists(subkey: &str) -> bool {
        let name = wide(subkey);
        let mut key: HKEY = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `key` receives the handle, closed by Key's Drop.
        let opened =
            unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, name.as_ptr(), 0, KEY_READ, &mut key) };
        if opened != ERROR_SUCCESS {
            return false;
        }
        drop(Key(key));
        true
    }

    pub fn set_string(subkey: &str, name: &str, value: &str) -> io::Result<()> {
        let key = open(subkey)?;
        let name = wide(name);
        let data: Vec<u8> = wide(value).iter().flat_map(|u| u.to_le_bytes()).collect();
        // SAFETY: `name` is NUL-terminated; `data` is a NUL-terminated UTF-16 string of
        // exactly `data.len()` bytes.
        check(unsafe {
            RegSetValueExW(
                key.0,
                name.as_ptr(),
                0,
                REG_SZ,
                data.as_ptr(),
                data.len() as u32,
            )
        })
    }

    pub fn delete_value(subkey: &str, name: &str) -> io::Result<bool> {
        let key = open(subkey)?;
        let name = wide(name);
        // SAFETY: `name` is NUL-terminated.
        match unsafe { RegDeleteValueW(key.0, name.as_ptr()) } {
            ERROR_FILE_NOT_FOUND => Ok(false),
            code => check(code).map(|()| true),
        }
    }

    pub fn delete_tree(subkey: &str) -> io::Result<()> {
        let name = wide(subkey);
        // RegDeleteTreeW empties the key (values and subkeys); RegDeleteKeyW then removes it.
        // SAFETY: `name` is NUL-terminated.
        match unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, name.as_ptr()) } {
            ERROR_FILE_NOT_FOUND => return Ok(()),
            code => check(code)?,
        }
        // SAFETY: as above.
        match unsafe { RegDeleteKeyW(HKEY_LOCAL_MACHINE, name.as_ptr()) } {
            ERROR_FILE_NOT_FOUND => Ok(()),
            code => check(code),
        }
    }
}

#[cfg(not(windows))]
mod imp {
    use std::io;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the Windows registry exists only on Windows",
        )
    }

    pub fn read_strings(_subkey: &str) -> io::Result<Vec<(String, String)>> {
        Err(unsupported())
    }

    pub fn key_exists(_subkey: &str) -> bool {
        false
    }

    pub fn set_string(_subkey: &str, _name: &str, _value: &str) -> io::Result<()> {
        Err(unsupported())
    }

    pub fn delete_value(_subkey: &str, _name: &str) -> io::Result<bool> {
        Err(unsupported())
    }

    pub fn delete_tree(_subkey: &str) -> io::Result<()> {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under Wine (or on Windows): a scratch key, written, read back, deleted.
    #[cfg(windows)]
    #[test]
    fn strings_round_trip_in_a_scratch_key() {
        let key = format!("SOFTWARE\\egs-test-{}", std::process::id());
        assert_eq!(read_strings(&key).unwrap(), vec![], "created empty");
        set_string(&key, "a", "1").unwrap();
        set_string(&key, "ключ", "ünïcode value").unwrap();
        set_string(&key, "a", "2").unwrap();
        set_string(&key, "empty", "").unwrap();
        let mut values = read_strings(&key).unwrap();
        values.sort();
        assert_eq!(
            values,
            vec![
                ("a".into(), "2".into()),
                ("empty".into(), String::new()),
                ("ключ".into(), "ünïcode value".into()),
            ]
        );
        assert!(delete_value(&key, "a").unwrap());
        assert!(!delete_value(&key, "a").unwrap());
        assert_eq!(read_strings(&key).unwrap().len(), 2);
        delete_tree(&key).unwrap();
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_every_call_says_there_is_no_registry() {
        const { assert!(!AVAILABLE) };
        let e = read_strings("SOFTWARE\\x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("only on Windows"));
        assert!(set_string("k", "n", "v").is_err());
        assert!(delete_value("k", "n").is_err());
        assert!(delete_tree("k").is_err());
    }
}
