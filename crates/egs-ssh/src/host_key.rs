//! Key files: the server's host keys (Ed25519, and ECDSA P-256 for clients without
//! Ed25519) and the host tool's Ed25519 client key, created on first use in a 0700 directory (mode 0600, public half beside it as `.pub` for client
//! keys) and created anew if the file cannot be read as a key or is readable by others.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, EcdsaCurve, PrivateKey};

/// A key file that could not be read, created or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl KeyFileError {
    fn new(path: &Path, reason: impl std::fmt::Display) -> KeyFileError {
        KeyFileError {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Loads the Ed25519 host key at `path`, or generates and stores a new one.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, KeyFileError> {
    load_or_create_named(path, "egs host key", false)
}

/// The host keys in `dir`: `egs_host_key` (Ed25519) and `egs_host_key_ecdsa` (P-256).
pub fn host_keys(dir: &Path) -> Result<Vec<PrivateKey>, KeyFileError> {
    Ok(vec![
        load_or_create(&dir.join("egs_host_key"))?,
        load_or_create_with(
            &dir.join("egs_host_key_ecdsa"),
            "egs host key",
            false,
            || {
                PrivateKey::random(
                    &mut rand::rng(),
                    Algorithm::Ecdsa {
                        curve: EcdsaCurve::NistP256,
                    },
                )
                .map_err(|e| e.to_string())
            },
        )?,
    ])
}

/// Loads the key pair at `path` (`path.pub` beside it), or generates and stores a new one
/// with `comment`.
pub fn load_or_create_client(path: &Path, comment: &str) -> Result<PrivateKey, KeyFileError> {
    load_or_create_named(path, comment, true)
}

/// Reads a key the user brings (`--identity`): OpenSSH, PKCS#8, PKCS#1 or SEC1 PEM, with
/// CRLF line ends read as LF (as the original); never created, never rewritten. A
/// passphrase-protected key is refused (there is no prompt).
pub fn load_identity(path: &Path) -> Result<PrivateKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyFileError::new(path, e))?;
    let text = text.replace("\r\n", "\n");
    russh::keys::decode_secret_key(&text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => KeyFileError::new(
            path,
            "the key is protected by a passphrase, which egs-tool cannot ask for",
        ),
        other => KeyFileError::new(path, other),
    })
}

fn load_or_create_named(
    path: &Path,
    comment: &str,
    with_public: bool,
) -> Result<PrivateKey, KeyFileError> {
    load_or_create_with(path, comment, with_public, || {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
        PrivateKey::new(KeypairData::from(Ed25519Keypair::from_seed(&seed)), "")
            .map_err(|e| e.to_string())
    })
}

fn load_or_create_with(
    path: &Path,
    comment: &str,
    with_public: bool,
    generate: impl FnOnce() -> Result<PrivateKey, String>,
) -> Result<PrivateKey, KeyFileError> {
    let err = |e: &dyn std::fmt::Display| KeyFileError::new(path, e);
    if let Ok(text) = std::fs::read_to_string(path) {
        let exposed = egs_sys::fs::mode(path).is_some_and(|m| m & 0o077 != 0);
        if let (false, Ok(key)) = (exposed, PrivateKey::from_openssh(text.as_bytes())) {
            if with_public {
                write_public(path, &key)?;
            }
            return Ok(key);
        }
    }
    let dir = path.parent().ok_or_else(|| err(&"no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    egs_sys::fs::set_mode(dir, 0o700).map_err(|e| err(&e))?;
    egs_sys::fs::make_private(dir).map_err(|e| err(&e))?;
    let mut key = generate().map_err(|e| err(&e))?;
    key.set_comment(comment);
    let text = key.to_openssh(LineEnding::LF).map_err(|e| err(&e))?;
    egs_sys::fs::write_atomic(path, text.as_bytes(), 0o600).map_err(|e| err(&e))?;
    if with_public {
        write_public(path, &key)?;
    }
    Ok(key)
}

/// Writes `<path>.pub` (an authorized_keys line) unless it already says the same.
fn write_public(path: &Path, key: &PrivateKey) -> Result<(), KeyFileError> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = Path::new(&pub_path);
    let line = key
        .public_key()
        .to_openssh()
        .map_err(|e| KeyFileError::new(pub_path, e))?
        + "\n";
    if std::fs::read_to_string(pub_path).ok().as_deref() == Some(line.as_str()) {
        return Ok(());
    }
    egs_sys::fs::write_atomic(pub_path, line.as_bytes(), 0o644)
        .map_err(|e| KeyFileError::new(pub_path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "POSIX modes guard key files here; on Windows the folder's DACL does (egs_sys::fs::make_private, tested there)"
    )]
    fn created_once_kept_and_replaced_when_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private/egs_host_key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(
            egs_sys::fs::mode(path.parent().unwrap()).unwrap() & 0o777,
            0o700
        );
        egs_sys::fs::set_mode(&path, 0o644).unwrap();
        let c = load_or_create(&path).unwrap();
        assert_ne!(a.public_key(), c.public_key(), "an exposed key is replaced");
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_or_create(&path).is_ok());
    }
}
