//! `egs-tool catlet …` against an eryph stand-in built from the documented contract
//! (`eryph-client-contract.md` §5–§6), as strict as eryph where the control plane is
//! concerned: the identity endpoint serves the discovery document and verifies each client
//! assertion (RS256 signature against the client's key, `typ`, iss = sub = client id, the
//! issuer as audience, a lifetime of at most 5 minutes, a `jti` never seen before) and the
//! requested scopes against the client's (with eryph's scope hierarchy); the compute
//! routes check the bearer token and the route's scope, validate bodies as eryph does, and
//! run operations Queued → Running → Completed (or Failed). Access keys become the KVP
//! line eryph writes (`expiry-time="yyyyMMddHHmmssZ" <key>`) in the caller's slot.
//!
//! Driven as a user would: the real binary, a fresh HOME with the client in
//! `~/.config/.eryph/default.config` and its key in `private/`.
//!
//! Unix only: under Wine 8 a test cannot spawn egs-tool.exe with piped output; the
//! Windows build's `catlet --help` runs under Wine in scripts/test.
#![cfg(unix)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};

const KEY: &str = include_str!("data/eryph-test-client.key");

/// What the stand-in knows and has seen.
#[derive(Default)]
struct State {
    /// client id → assigned scopes.
    clients: HashMap<String, Vec<String>>,
    /// Assertion ids seen (a replay is refused).
    jtis: HashSet<String>,
    /// access token → (client, granted scopes).
    tokens: HashMap<String, (String, Vec<String>)>,
    /// operation id → (polls so far, final status, result).
    operations: HashMap<String, (u32, &'static str, Value)>,
    /// KVP slots eryph would write: slot name → line.
    kvp: HashMap<String, String>,
    /// Settings of the catlet: (shell, shell_args).
    shell: (Option<String>, Option<String>),
    /// Token requests seen, with their scope field.
    token_requests: Vec<String>,
}

/// Scopes a holder of `scope` passes (eryph's flattened hierarchy, §5.6).
fn grants(scope: &str) -> Vec<&'static str> {
    match scope {
        "compute:write" => vec![
            "compute:read",
            "compute:catlets:write",
            "compute:catlets:read",
            "compute:catlets:control",
            "compute:catlets:remote-access",
        ],
        "compute:read" => vec!["compute:catlets:read"],
        "compute:catlets:write" => vec![
            "compute:catlets:read",
            "compute:catlets:control",
            "compute:catlets:remote-access",
        ],
        "compute:catlets:control" => vec!["compute:catlets:read", "compute:catlets:remote-access"],
        _ => vec![],
    }
}

fn passes(held: &[String], needed: &str) -> bool {
    held.iter()
        .any(|h| h == needed || grants(h).contains(&needed))
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn url_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let path = target.split('?').next().unwrap_or(&target);
    Some(Request {
        method,
        path: path.to_string(),
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks a client assertion as eryph's identity endpoint does; the client id on success.
fn verify_assertion(
    state: &mut State,
    issuer: &str,
    fields: &HashMap<String, String>,
) -> Result<String, String> {
    if fields.get("grant_type").map(String::as_str) != Some("client_credentials")
        || fields.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err("unsupported_grant_type".into());
    }
    let client = fields.get("client_id").ok_or("invalid_client")?;
    let jwt = fields.get("client_assertion").ok_or("invalid_client")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let [h, c, s] = parts[..] else {
        return Err("invalid_client: shape".into());
    };
    let header: Value = serde_json::from_slice(&b64.decode(h).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&b64.decode(c).unwrap()).unwrap();
    if header["alg"] != "RS256" || header["typ"] != "client-authentication+jwt" {
        return Err(format!("invalid_client: header {header}"));
    }
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(KEY)
        .unwrap()
        .to_public_key();
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key);
    let signature = rsa::pkcs1v15::Signature::try_from(&b64.decode(s).unwrap()[..]).unwrap();
    verifier
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "invalid_client: signature".to_string())?;
    let t = now();
    let exp = claims["exp"].as_u64().unwrap_or(0);
    let nbf = claims["nbf"].as_u64().unwrap_or(u64::MAX);
    if claims["iss"] != client.as_str()
        || claims["sub"] != client.as_str()
        || claims["aud"] != issuer
        || exp <= t
        || exp > t + 300 + 5
        || nbf > t + 5
    {
        return Err(format!("invalid_client: claims {claims}"));
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_string();
    if jti.is_empty() || !state.jtis.insert(jti) {
        return Err("invalid_client: replayed assertion".into());
    }
    Ok(client.clone())
}

fn start_operation(state: &mut State, final_status: &'static str, result: Value) -> Value {
    let id = format!("op-{}", state.operations.len() + 1);
    state
        .operations
        .insert(id.clone(), (0, final_status, result));
    json!({"id": id, "status": "Queued"})
}

fn handle(state: &Arc<Mutex<State>>, base: &str, mut stream: TcpStream) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    let issuer = format!("{base}/identity/");
    let mut state = state.lock().unwrap();
    let path = request.path.as_str();
    if path == "/identity/.well-known/openid-configuration" {
        return respond(
            &mut stream,
            200,
            &json!({
                "issuer": issuer,
                "token_endpoint": format!("{base}/identity/connect/token"),
                "eryph_client_assertion_audience": "issuer",
            }),
        );
    }
    if path == "/identity/connect/token" && request.method == "POST" {
        let fields = form(std::str::from_utf8(&request.body).unwrap());
        state.token_requests.push(
            fields
                .get("scope")
                .cloned()
                .unwrap_or_else(|| "<none>".into()),
        );
        let client = match verify_assertion(&mut state, &issuer, &fields) {
            Ok(c) => c,
            Err(e) => {
                return respond(
                    &mut stream,
                    400,
                    &json!({"error": "invalid_client", "error_description": e}),
                )
            }
        };
        let assigned = state.clients.get(&client).cloned().unwrap_or_default();
        let requested: Vec<String> = fields
            .get("scope")
            .map(|s| {
                s.split(' ')
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if requested.iter().any(|r| !passes(&assigned, r)) {
            return respond(
                &mut stream,
                400,
                &json!({"error": "invalid_scope", "error_description": "The specified 'scope' is invalid."}),
            );
        }
        let granted = if requested.is_empty() {
            assigned
        } else {
            requested
        };
        let token = format!("token-{}", state.tokens.len() + 1);
        state.tokens.insert(token.clone(), (client, granted));
        return respond(
            &mut stream,
            200,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
        );
    }
    // Compute routes: a known bearer token first.
    let Some((client, granted)) = request
        .headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| state.tokens.get(t).cloned())
    else {
        return respond(&mut stream, 401, &Value::Null);
    };
    let need = |scope: &str| passes(&granted, scope);
    let catlet = "/compute/v1/catlets/c0ffee";
    let forbidden = json!({"title": "Forbidden"});
    match (request.method.as_str(), path) {
        ("GET", p) if p.starts_with("/compute/v1/operations/") => {
            let id = &p["/compute/v1/operations/".len()..];
            let Some(op) = state.operations.get_mut(id) else {
                return respond(&mut stream, 404, &Value::Null);
            };
            op.0 += 1;
            let status = match op.0 {
                1 => "Queued",
                2 => "Running",
                _ => op.1,
            };
            let mut answer = json!({"id": id, "status": status});
            if status == "Completed" {
                answer["result"] = op.2.clone();
            }
            if status == "Failed" {
                answer["status_message"] = json!("The catlet is not running.");
            }
            respond(&mut stream, 200, &answer)
        }
        ("GET", p) if p == format!("{catlet}/guest-services") => {
            if !need("compute:catlets:read") {
                return respond(&mut stream, 403, &forbidden);
            }
            let (shell, _) = state.shell.clone();
            let op = start_operation(
                &mut state,
                "Completed",
                json!({
                    "result_type": "GuestServicesStatus",
                    "guest_services_status": "available",
                    "guest_services_version": "0.9.0",
                    "provisioning_state": "completed",
                    "shell": shell,
                }),
            );
            respond(&mut stream, 202, &op)
        }
        ("PATCH", p) if p == format!("{catlet}/guest-services/settings") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let (shell, args) = (
                body.get("shell").and_then(Value::as_str),
                body.get("shell_args").and_then(Value::as_str),
            );
            if shell.is_none() && args.is_none() {
                return respond(
                    &mut stream,
                    400,
                    &json!({"detail": "At least one setting must be provided."}),
                );
            }
            let set = |v: Option<&str>, old: Option<String>| match v {
                None => old,
                Some("") => None,
                Some(s) => Some(s.to_string()),
            };
            state.shell = (
                set(shell, state.shell.0.clone()),
                set(args, state.shell.1.clone()),
            );
            let op = start_operation(&mut state, "Completed", Value::Null);
            respond(&mut stream, 202, &op)
        }
        ("POST", p) if p == format!("{catlet}/guest-services/access-keys") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let key = body["public_key"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string();
            if key.is_empty() || key.len() > 2048 || key.contains(['\r', '\n', '"']) {
                return respond(
                    &mut stream,
                    400,
                    &json!({"detail": "The public key is invalid."}),
                );
            }
            let line = match body.get("expires_at").and_then(Value::as_str) {
                None => key,
                Some(at) => {
                    // 2026-12-02T18:00:00.0000000Z → 20261202180000Z, in the future, ≤ 30 days.
                    let digits: String = at[..19].chars().filter(char::is_ascii_digit).collect();
                    format!("expiry-time=\"{digits}Z\" {key}")
                }
            };
            state.kvp.insert(
                format!("eryph:guest-services:client-public-key:{client}"),
                line,
            );
            let op = start_operation(&mut state, "Completed", Value::Null);
            respond(&mut stream, 202, &op)
        }
        ("DELETE", p) if p == format!("{catlet}/guest-services/access-keys") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            state
                .kvp
                .remove(&format!("eryph:guest-services:client-public-key:{client}"));
            let op = start_operation(&mut state, "Completed", Value::Null);
            respond(&mut stream, 202, &op)
        }
        (_, p) if p.starts_with("/compute/v1/catlets/") => respond(&mut stream, 404, &Value::Null),
        _ => respond(&mut stream, 404, &Value::Null),
    }
}

/// Starts the stand-in; returns its base URL and state.
fn stand_in() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(State::default()));
    let (s, b) = (state.clone(), base.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (s, b) = (s.clone(), b.clone());
            std::thread::spawn(move || handle(&s, &b, stream));
        }
    });
    (base, state)
}

/// A fresh HOME whose user store has `client` as the default client.
fn home(base: &str, client: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join(".config/.eryph");
    std::fs::create_dir_all(store.join("private")).unwrap();
    std::fs::write(
        store.join("default.config"),
        json!({
            "defaultClientId": client,
            "clients": [{"id": client, "name": "test"}],
            "endpoints": {"identity": format!("{base}/identity"), "compute": format!("{base}/compute")},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(store.join("private").join(format!("{client}.key")), KEY).unwrap();
    home
}

fn tool(home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_egs-tool"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("EGS_TOOL_HOME", home.join("egs"))
        .current_dir(home)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn control_plane_commands_against_the_stand_in() {
    let (base, state) = stand_in();
    state
        .lock()
        .unwrap()
        .clients
        .insert("ops".into(), vec!["compute:catlets:control".into()]);
    state
        .lock()
        .unwrap()
        .clients
        .insert("reader".into(), vec!["compute:read".into()]);
    let home = home(&base, "ops");
    let h = home.path();

    let (ok, out, err) = tool(h, &["catlet", "get-status", "c0ffee"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Guest services: available\nVersion: 0.9.0\nProvisioning: completed\nShell: -\n"
    );
    assert!(
        err.contains("Connecting over an unencrypted channel"),
        "{err}"
    );

    let (ok, out, err) = tool(
        h,
        &["catlet", "set-shell", "c0ffee", "/bin/zsh", "--args", "-l"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "New sessions use '/bin/zsh'.\n");
    assert_eq!(
        state.lock().unwrap().shell,
        (Some("/bin/zsh".into()), Some("-l".into()))
    );
    let (ok, out, _) = tool(h, &["catlet", "get-status", "c0ffee"]);
    assert!(ok && out.ends_with("Shell: /bin/zsh\n"), "{out}");
    let (ok, _, _) = tool(h, &["catlet", "set-shell", "c0ffee", ""]);
    assert!(ok);
    assert_eq!(state.lock().unwrap().shell, (None, None));

    let key_file = h.join("k.pub");
    std::fs::write(
        &key_file,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB operator@host\n",
    )
    .unwrap();
    let key_arg = key_file.to_str().unwrap();
    let (ok, out, err) = tool(
        h,
        &[
            "catlet",
            "add-key",
            "c0ffee",
            "--public-key",
            key_arg,
            "--ttl",
            "8h",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("The key was added and expires at "),
        "{out}"
    );
    let line = state.lock().unwrap().kvp["eryph:guest-services:client-public-key:ops"].clone();
    assert!(
        line.starts_with("expiry-time=\"")
            && line.ends_with("Z\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB operator@host"),
        "{line}"
    );
    let (ok, _, err) = tool(
        h,
        &[
            "catlet",
            "add-key",
            "c0ffee",
            "--public-key",
            key_arg,
            "--ttl",
            "8h30",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("Invalid --ttl '8h30'. Use a duration such as 8h, 30m or 1d12h."),
        "{err}"
    );
    let (ok, out, _) = tool(h, &["catlet", "remove-key", "c0ffee"]);
    assert!(ok);
    assert_eq!(out, "The key of the client 'ops' was removed.\n");
    assert!(state.lock().unwrap().kvp.is_empty());

    // Least privilege per call: the read scope for the status, remote-access for keys,
    // and nothing (every granted scope) for operation polls.
    let requests = state.lock().unwrap().token_requests.clone();
    for scope in ["compute:catlets:read", "compute:catlets:remote-access", ""] {
        assert!(requests.iter().any(|r| r == scope), "{scope}: {requests:?}");
    }

    // A client without the scope gets eryph's refusal, word for word.
    let reader = self::home(&base, "reader");
    let (ok, _, err) = tool(
        reader.path(),
        &["catlet", "add-key", "c0ffee", "--public-key", key_arg],
    );
    assert!(!ok);
    assert!(
        err.contains(
            "Could not retrieve an access token: invalid_scope. The specified 'scope' is invalid."
        ),
        "{err}"
    );
    // An unknown catlet, and no configuration at all.
    let (ok, _, err) = tool(h, &["catlet", "get-status", "nope"]);
    assert!(!ok && err.contains("the catlet was not found"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = tool(empty.path(), &["catlet", "get-status", "c0ffee"]);
    assert!(!ok);
    assert!(
        err.contains(
            "Could not find an eryph connection. Is eryph configured or eryph-zero running?"
        ),
        "{err}"
    );
    let (ok, _, err) = tool(
        h,
        &["catlet", "get-status", "c0ffee", "--configuration", "../x"],
    );
    assert!(
        !ok && err.contains("may only contain letters, digits"),
        "{err}"
    );
}
