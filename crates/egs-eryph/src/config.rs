//! The eryph client configuration (`eryph-client-contract.md` §1–§3): the three config
//! stores (`.eryph` in the current directory, the user's and the system's configuration
//! folders), `<name>.config` JSON (`defaultClientId`, `clients`, `endpoints`, member names
//! case-insensitive) and the client's PKCS#1 key in the store that lists it; the lookup of
//! `--configuration`/`--client-id` as the original resolves them; and without selectors
//! the system client of a running eryph-zero or local identity (§4: its lock file, its
//! key, DPAPI on Windows). Files only, no network.

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

/// The existing stores' `<configuration>.config`, in lookup order.
fn read_stores(dirs: &[PathBuf], configuration: &str) -> Result<Vec<Store>, String> {
    let mut stores = Vec::new();
    for dir in dirs {
        if let Some(store) = read_store(dir, configuration)? {
            stores.push(store);
        }
    }
    Ok(stores)
}

/// An endpoint by name (ordinal, case-sensitive): the first store that has it, then what a
/// running local identity announced.
fn endpoint(stores: &[Store], announced: &[(String, String)], name: &str) -> Option<String> {
    stores
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .chain(announced.iter())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// .NET's `CommonApplicationData`, where eryph-zero and the local identity keep their
/// state: `%ProgramData%` on Windows, `/usr/share` elsewhere.
pub fn common_data_dir() -> PathBuf {
    match std::env::var_os("ProgramData").filter(|d| !d.is_empty()) {
        Some(dir) if egs_sys::WINDOWS => PathBuf::from(dir),
        _ if egs_sys::WINDOWS => PathBuf::from(r"C:\ProgramData"),
        _ => PathBuf::from("/usr/share"),
    }
}

/// The credentials to use (§4 `FindCredentials`): with a selector, exactly what it names
/// ([`resolve`]); without, the configurations `default`, `zero` (Windows only) and `local`
/// in turn, each by its default client, then (`zero`, `local`) by the system client of
/// the running local identity. A step that finds nothing passes to the next; when none
/// finds anything, the first problem worth telling (a broken store, a local identity
/// that is running but out of reach) is the answer, else [`NO_CONNECTION`].
pub fn find(
    dirs: &[PathBuf],
    data: &Path,
    configuration: Option<&str>,
    client_id: Option<&str>,
) -> Result<Credentials, String> {
    if configuration.is_some() || client_id.is_some() {
        return resolve(dirs, data, configuration, client_id);
    }
    let configurations: &[&str] = if egs_sys::WINDOWS {
        &["default", "zero", "local"]
    } else {
        &["default", "local"]
    };
    let mut problem = None;
    for configuration in configurations {
        let default_client = resolve(dirs, data, Some(configuration), None);
        let found = match default_client {
            Err(e) if e == NO_CONNECTION && *configuration != "default" => {
                system_client(dirs, data, configuration)
            }
            Err(e) if *configuration != "default" => {
                system_client(dirs, data, configuration).map_err(|_| e)
            }
            other => other,
        };
        match found {
            Ok(credentials) => return Ok(credentials),
            Err(e) if e != NO_CONNECTION => {
                problem.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(problem.unwrap_or_else(|| NO_CONNECTION.into()))
}

/// What a running eryph-zero (`zero`) or local identity (`local`) announces in its lock
/// file `<CommonApplicationData>/eryph/<zero|identity>/.lock`.
struct LocalIdentity {
    /// `<CommonApplicationData>/eryph/<zero|identity>`.
    dir: PathBuf,
    /// The lock file's `endpoints`.
    endpoints: Vec<(String, String)>,
}

/// The running local identity of `configuration`; [`NO_CONNECTION`] when there is none
/// (no lock file, or its process is gone).
fn local_identity(data: &Path, configuration: &str) -> Result<LocalIdentity, String> {
    let name = match configuration {
        "zero" if egs_sys::WINDOWS => "zero",
        "zero" => return Err("The system client for eryph zero exists only on Windows.".into()),
        "local" => "identity",
        _ => return Err(NO_CONNECTION.into()),
    };
    let dir = data.join("eryph").join(name);
    let Ok(text) = std::fs::read_to_string(dir.join(".lock")) else {
        return Err(NO_CONNECTION.into());
    };
    let lock: Value = serde_json::from_str(&text).map_err(|_| NO_CONNECTION.to_string())?;
    let process = member(&lock, "processName").and_then(Value::as_str);
    let pid = member(&lock, "processId")
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok());
    let (Some(process), Some(pid)) = (process, pid) else {
        return Err(NO_CONNECTION.into());
    };
    if !egs_sys::process::is_running(pid, process) {
        return Err(NO_CONNECTION.into());
    }
    let endpoints = member(&lock, "endpoints")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(LocalIdentity { dir, endpoints })
}

/// A URI as .NET's `Uri.ToString()` gives it: a bare authority gains a trailing `/`.
fn normalized_uri(uri: &str) -> String {
    match uri.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{uri}/"),
        _ => uri.to_string(),
    }
}

/// The system client (`system-client`) of the running local identity for `zero` or
/// `local`: elevated on Windows, its key read with DPAPI (machine scope, the identity
/// URI as entropy) or as plain PEM (always so off Windows, where file permissions guard it).
fn system_client(
    dirs: &[PathBuf],
    data: &Path,
    configuration: &str,
) -> Result<Credentials, String> {
    let local = local_identity(data, configuration)?;
    if egs_sys::WINDOWS && !egs_sys::host::is_elevated() {
        return Err(
            "This application has to be started as admin to access the eryph system client. "
                .into(),
        );
    }
    let stores = read_stores(dirs, configuration)?;
    let lookup = |name: &str| endpoint(&stores, &local.endpoints, name);
    let identity = local
        .endpoints
        .iter()
        .find(|(k, _)| k == "identity")
        .map(|(_, v)| normalized_uri(v))
        .ok_or(NO_CONNECTION)?;
    let compute = lookup("compute").ok_or(NO_CONNECTION)?;
    let key_file = local.dir.join("private/clients/system-client.key");
    let bytes = std::fs::read(&key_file).map_err(|e| {
        format!(
            "The key of the eryph system client could not be read ({}: {e}).",
            key_file.display()
        )
    })?;
    let private_key_pem = egs_sys::dpapi::unprotect(&bytes, identity.as_bytes())
        .ok()
        .and_then(|plain| String::from_utf8(plain).ok())
        .or_else(|| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            format!(
                "The key of the eryph system client is not readable ({}).",
                key_file.display()
            )
        })?;
    Ok(Credentials {
        client_id: "system-client".into(),
        private_key_pem,
        identity,
        compute,
    })
}

/// The credentials for `configuration` (default `default`) and `client_id` (default: the
/// configuration's default client), from the stores in `dirs`, as §1.3 orders them; for
/// `zero` and `local` the running local identity's endpoints come after the stores'.
pub fn resolve(
    dirs: &[PathBuf],
    data: &Path,
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
    let stores = read_stores(dirs, configuration)?;
    let announced = match configuration {
        "zero" | "local" => local_identity(data, configuration)
            .map(|l| l.endpoints)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let (Some(identity), Some(compute)) = (
        endpoint(&stores, &announced, "identity"),
        endpoint(&stores, &announced, "compute"),
    ) else {
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
        let none = tmp.path().join("no-eryph");
        let c = resolve(&dirs, &none, None, None).unwrap();
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
        let c = resolve(&dirs, &none, None, Some("sys")).unwrap();
        assert_eq!(c.private_key_pem, "KEY sys");
        assert_eq!(
            resolve(&dirs, &none, None, Some("nobody")).unwrap_err(),
            "The client 'nobody' is not in the configuration 'default'."
        );
        assert_eq!(
            resolve(&dirs, &none, Some("zero"), None).unwrap_err(),
            NO_CONNECTION
        );
        assert_eq!(
            resolve(&dirs, &none, Some("a/b"), None).unwrap_err(),
            "The value for --configuration may only contain letters, digits, '.', '-' and '_'."
        );
        std::fs::remove_file(user.join("private/ops.key")).unwrap();
        std::fs::remove_file(system.join("private/ops.key")).unwrap();
        assert!(resolve(&dirs, &none, None, None)
            .unwrap_err()
            .starts_with("The private key of the client 'ops' could not be read"));
    }

    /// A lock file naming a live process (this test) and the system client's key, as a
    /// local identity leaves them under `<CommonApplicationData>/eryph/identity`.
    fn local_identity_files(data: &Path, pid: u32, endpoints: &str) {
        let dir = data.join("eryph/identity");
        std::fs::create_dir_all(dir.join("private/clients")).unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_str().unwrap();
        std::fs::write(
            dir.join(".lock"),
            format!(r#"{{"processName": "{name}", "processId": {pid}, "endpoints": {endpoints}}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("private/clients/system-client.key"), "SYSTEM KEY").unwrap();
    }

    #[test]
    fn without_selectors_the_running_local_identity_lends_its_system_client() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, user) = (tmp.path().join("data"), tmp.path().join("user"));
        let dirs = [user.clone()];
        assert_eq!(find(&dirs, &data, None, None).unwrap_err(), NO_CONNECTION);
        local_identity_files(
            &data,
            std::process::id(),
            r#"{"identity": "http://eryph.io", "compute": "http://eryph.io/compute"}"#,
        );
        if !egs_sys::WINDOWS || egs_sys::host::is_elevated() {
            let c = find(&dirs, &data, None, None).unwrap();
            assert_eq!(
                (
                    c.client_id.as_str(),
                    c.identity.as_str(),
                    c.compute.as_str()
                ),
                (
                    "system-client",
                    "http://eryph.io/",
                    "http://eryph.io/compute"
                )
            );
            assert_eq!(c.private_key_pem, "SYSTEM KEY");
        }
        // A selector turns the fallback off: `local`'s stores have no client, so the
        // announced endpoints alone do not make a connection.
        assert!(find(&dirs, &data, Some("local"), None).is_err());
        // A user store with a default client for `local` takes the announced endpoints.
        store(
            &user,
            "local",
            r#"{"defaultClientId": "me", "clients": [{"id": "me"}]}"#,
            &["me"],
        );
        let c = find(&dirs, &data, Some("local"), None).unwrap();
        assert_eq!(
            (c.client_id.as_str(), c.compute.as_str()),
            ("me", "http://eryph.io/compute")
        );
        // `default` comes first when it is configured.
        store(
            &user,
            "default",
            r#"{"defaultClientId": "me", "clients": [{"id": "me"}],
                "endpoints": {"identity": "https://far/identity", "compute": "https://far/compute"}}"#,
            &["me"],
        );
        assert_eq!(find(&dirs, &data, None, None).unwrap().client_id, "me");
        // A lock file whose process is gone is no local identity.
        std::fs::remove_file(user.join("default.config")).unwrap();
        std::fs::remove_file(user.join("local.config")).unwrap();
        local_identity_files(&data, u32::MAX - 1, r#"{"identity": "http://eryph.io"}"#);
        assert_eq!(find(&dirs, &data, None, None).unwrap_err(), NO_CONNECTION);
        assert_eq!(
            normalized_uri("https://h:8000/identity"),
            "https://h:8000/identity"
        );
    }
}
