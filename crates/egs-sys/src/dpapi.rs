//! Windows' data protection (DPAPI) as eryph-zero uses it for the system client's key
//! (`eryph-client-contract.md` §4): machine scope, with an entropy string. Other systems
//! have no DPAPI; there the key file is plain PEM and [`unprotect`] says so.

/// Decrypts `data` that `CryptProtectData` protected with `entropy`.
pub fn unprotect(data: &[u8], entropy: &[u8]) -> Result<Vec<u8>, String> {
    imp::unprotect(data, entropy)
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Cryptography::{
        CryptUnprotectData, CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
    };

    pub(super) fn blob(bytes: &[u8]) -> CRYPT_INTEGER_BLOB {
        CRYPT_INTEGER_BLOB {
            cbData: bytes.len() as u32,
            pbData: bytes.as_ptr() as *mut u8,
        }
    }

    pub fn unprotect(data: &[u8], entropy: &[u8]) -> Result<Vec<u8>, String> {
        let input = blob(data);
        let entropy = blob(entropy);
        let mut output = CRYPT_INTEGER_BLOB {
            cbData: 0,
            pbData: std::ptr::null_mut(),
        };
        // SAFETY: the input blobs point at live slices that CryptUnprotectData only reads;
        // the output blob is allocated by the call and freed with LocalFree below.
        let ok = unsafe {
            CryptUnprotectData(
                &input,
                std::ptr::null_mut(),
                &entropy,
                std::ptr::null(),
                std::ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut output,
            )
        };
        if ok == 0 {
            return Err(format!(
                "DPAPI could not decrypt it ({})",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: on success the output blob holds cbData bytes at pbData.
        let plain =
            unsafe { std::slice::from_raw_parts(output.pbData, output.cbData as usize) }.to_vec();
        // SAFETY: pbData was allocated by CryptUnprotectData with LocalAlloc.
        unsafe { LocalFree(output.pbData.cast()) };
        Ok(plain)
    }
}

#[cfg(not(windows))]
mod imp {
    pub fn unprotect(_data: &[u8], _entropy: &[u8]) -> Result<Vec<u8>, String> {
        Err("DPAPI exists only on Windows".into())
    }
}

#[cfg(all(test, windows))]
mod tests {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Cryptography::{
        CryptProtectData, CRYPTPROTECT_LOCAL_MACHINE, CRYPT_INTEGER_BLOB,
    };

    /// What eryph-zero writes (machine scope, the identity URI as entropy) reads back with
    /// the same entropy and not with another (under Wine's crypt32).
    #[test]
    fn machine_scope_round_trip() {
        let secret = b"-----BEGIN RSA PRIVATE KEY-----\n...";
        let entropy = b"https://localhost:8000/identity/";
        let input = super::imp::blob(secret);
        let extra = super::imp::blob(entropy);
        let mut output = CRYPT_INTEGER_BLOB {
            cbData: 0,
            pbData: std::ptr::null_mut(),
        };
        // SAFETY: as in unprotect.
        let ok = unsafe {
            CryptProtectData(
                &input,
                std::ptr::null(),
                &extra,
                std::ptr::null(),
                std::ptr::null(),
                CRYPTPROTECT_LOCAL_MACHINE,
                &mut output,
            )
        };
        assert_ne!(ok, 0, "{}", std::io::Error::last_os_error());
        // SAFETY: the output blob from CryptProtectData.
        let protected =
            unsafe { std::slice::from_raw_parts(output.pbData, output.cbData as usize) }.to_vec();
        // SAFETY: allocated by CryptProtectData.
        unsafe { LocalFree(output.pbData.cast()) };
        assert_ne!(&protected[..], &secret[..]);
        assert_eq!(super::unprotect(&protected, entropy).unwrap(), secret);
        assert!(super::unprotect(&protected, b"other").is_err());
    }
}
