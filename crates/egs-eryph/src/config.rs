//! The eryph client configuration (`eryph-client-contract.md` §1–§3): the three config
//! stores (`.eryph` in the current directory, the user's and the system's configuration
//! folders), `<name>.config` JSON (`defaultClientId`, `clients`, `endpoints`, member names
//! case-insensitive) and the client's PKCS#1 key in the store that lists it; the lookup of
//! `--configuration`/`--client-id` as the original resolves them. Files only, no network.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The client's id, key and endpoints, ready for a token request.
#[derive(Clone)]
pub struct Credentials {
    /// The client id (`iss`/`sub` of the assertion).
    pub client_id: String,
    /// The RSA private key, PEM (PKCS#1 `BEGIN RSA PRIVATE KEY`).
    pub private_key_pem: String,
    /// The `identity` endpoint.
    pub identity: String,
    /// The `compute` endpoint.
    pub compute: String,
}

impl std::fmt::Debug for Credentials {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("identity", &self.identity)
            .field("compute", &self.compute)
            .finish_non_exhaustive()
    }
}

/// The original's message when there is no usable connection.
pub const NO_CONNECTION: &str =
    "Could not find an eryph connection. Is eryph configured or eryph-zero running?";

/// The stores in lookup order: current directory, user, system (§1.1).
pub fn store_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(".eryph"));
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if egs_sys::WINDOWS {
        if let Some(appdata) = var("APPDATA") {
            dirs.push(PathBuf::from(appdata).join(".eryph"));
        }
        if let Some(data) = var("ProgramData") {
            dirs.push(PathBuf::from(data).join(".eryph"));
        }
    } else {
        let xdg = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let user = xdg.or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(user) = user {
            dirs.push(user.join(".eryph"));
        }
        dirs.push(PathBuf::from("/usr/share/.eryph"));
    }
    dirs
}

/// One store's `<name>.config`, read.
#[derive(Debug)]
struct Store {
    dir: PathBuf,
    default_client: Option<String>,
    clients: Vec<String>,
    endpoints: Vec<(String, String)>,
}

/// A member of a JSON object by name, case-insensitively (System.Text.Json's Web defaults).
fn member<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn read_store(dir: &Path, configuration: &str) -> Result<Option<Store>, String> {
    let file = dir.join(format!("{configuration}.config"));
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", file.display()))?;
    let text_of = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let clients = member(&json, "clients")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| member(c, "id").and_then(text_of))
                .collect()
        })
        .unwrap_or_default();
    let endpoints = member(&json, "endpoints")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| text_of(v).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Store {
        dir: dir.to_path_buf(),
        default_client: member(&json, "defaultClientId").and_then(text_of),
        clients,
        endpoints,
    }))
}

/// A safe token (`[A-Za-z0-9._-]+`): a selector, catlet id, name or project that can
/// stand in a file name, an ssh `Host` line or a ProxyCommand as it is.
pub fn is_safe_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Checks a `--configuration`/`--client-id` value: letters, digits, `.`, `-`, `_`.
pub fn check_selector(flag: &str, value: &str) -> Result<(), String> {
    if is_safe_token(value) {
        Ok(())
    } else {
        Err(format!(
            "The value for {flag} may only contain letters, digits, '.', '-' and '_'."
        ))
    }
}

/// The credentials for `configuration` (default `default`) and `client_id` (default: the
/// configuration's default client), from the stores in `dirs`, as §1.3 orders them.
pub fn resolve(
    dirs: &[PathBuf],
    configuration: Option<&str>,
    client_id: Option<&str>,
) -> Result<Credentials, String> {
    if let Some(c) = configuration {
        check_selector("--configuration", c)?;
    }
    if let Some(c) = client_id {
        check_selector("--client-id", c)?;
    }
    let configuration = configuration.unwrap_or("default");
    let mut stores = Vec::new();
    for dir in dirs {
        if let Some(store) = read_store(dir, configuration)? {
            stores.push(store);
        }
    }
    let endpoint = |name: &str| {
        stores
            .iter()
            .find_map(|s| s.endpoints.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.clone())
    };
    let (Some(identity), Some(compute)) = (endpoint("identity"), endpoint("compute")) else {
        return Err(NO_CONNECTION.into());
    };
    let wanted = match client_id {
        Some(id) => id.to_string(),
        None => stores
            .iter()
            .find_map(|s| s.default_client.clone())
            .ok_or_else(|| {
                format!(
                    "The configuration '{configuration}' has no default client. Use --client-id."
                )
            })?,
    };
    // The key must sit in the store that lists the client; the first such store wins.
    let store = stores
        .iter()
        .find(|s| s.clients.contains(&wanted))
        .ok_or_else(|| {
            format!("The client '{wanted}' is not in the configuration '{configuration}'.")
        })?;
    let key_file = store.dir.join("private").join(format!("{wanted}.key"));
    let private_key_pem = std::fs::read_to_string(&key_file).map_err(|e| {
        format!(
            "The private key of the client '{wanted}' could not be read ({}: {e}).",
            key_file.display()
        )
    })?;
    Ok(Credentials {
        client_id: wanted,
        private_key_pem,
        identity,
        compute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, name: &str, json: &str, keys: &[&str]) {
        std::fs::create_dir_all(dir.join("private")).unwrap();
        std::fs::write(dir.join(format!("{name}.config")), json).unwrap();
        for key in keys {
            std::fs::write(
                dir.join("private").join(format!("{key}.key")),
                format!("KEY {key}"),
            )
            .unwrap();
        }
    }

    #[test]
    fn stores_are_read_in_order_with_the_contracts_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        let (cwd, user, system) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        // The user store names the default client; the system store has the endpoints
        // and another client; the current directory overrides `compute`.
        store(
            &cwd,
            "default",
            r#"{"endpoints": {"compute": "https://near/compute"}}"#,
            &[],
        );
        store(
            &user,
            "default",
            r#"{"DefaultClientId": "ops", "Clients": [{"id": "ops", "name": "Ops"}]}"#,
            &["ops"],
        );
        store(
            &system,
            "default",
            r#"{"defaultClientId": "sys", "clients": [{"id": "sys"}, {"id": "ops"}],
                "endpoints": {"identity": "https://far/identity", "compute": "https://far/compute"}}"#,
            &["sys", "ops"],
        );
        let dirs = [cwd, user.clone(), system.clone()];
        let c = resolve(&dirs, None, None).unwrap();
        assert_eq!(
            (
                c.client_id.as_str(),
                c.identity.as_str(),
                c.compute.as_str()
            ),
            ("ops", "https://far/identity", "https://near/compute")
        );
        assert_eq!(
            c.private_key_pem, "KEY ops",
            "the key of the store that lists it first"
        );
        assert!(
            !format!("{c:?}").contains("KEY"),
            "Debug never shows the key"
        );
        let c = resolve(&dirs, None, Some("sys")).unwrap();
        assert_eq!(c.private_key_pem, "KEY sys");
        assert_eq!(
            resolve(&dirs, None, Some("nobody")).unwrap_err(),
            "The client 'nobody' is not in the configuration 'default'."
        );
        assert_eq!(
            resolve(&dirs, Some("zero"), None).unwrap_err(),
            NO_CONNECTION
        );
        assert_eq!(
            resolve(&dirs, Some("a/b"), None).unwrap_err(),
            "The value for --configuration may only contain letters, digits, '.', '-' and '_'."
        );
        std::fs::remove_file(user.join("private/ops.key")).unwrap();
        std::fs::remove_file(system.join("private/ops.key")).unwrap();
        assert!(resolve(&dirs, None, None)
            .unwrap_err()
            .starts_with("The private key of the client 'ops' could not be read"));
    }
}
