//! `egs-tool catlet …` against an eryph stand-in built from the documented contract
//! (`eryph-client-contract.md` §5–§6), as strict as eryph where the control plane is
//! concerned: the identity endpoint serves the discovery document and verifies each client
//! assertion (RS256 signature against the client's key, `typ`, iss = sub = client id, the
//! issuer as audience, a lifetime of at most 5 minutes, a `jti` never seen before) and the
//! requested scopes against the client's (with eryph's scope hierarchy); the compute
//! routes check the bearer token and the route's scope, validate bodies as eryph does, and
//! run operations Queued → Running → Completed (or Failed). Access keys become the KVP
//! line eryph writes (`expiry-time="yyyyMMddHHmmssZ" <key>`) in the caller's slot, and
//! when a guest is attached, in its External pool file, as eryph writes it through
//! Hyper-V. The SSH channel is eryph's too: `PUT …/ssh-channel` mints a single-use token
//! that lives 120 s; the WebSocket route checks the bearer token and scope before the
//! upgrade, consumes the channel token after it (closing at once when it is unknown, used
//! or expired, as eryph's agent does) and relays binary frames to a real `egs-service`
//! daemon on a Unix socket. The relay can be told to cut the connection mid-stream.
//!
//! Driven as a user would: the real binaries, a fresh HOME with the client in
//! `~/.config/.eryph/default.config` and its key in `private/`, and the real OpenSSH
//! `ssh` and `sftp` through the generated config.
//!
//! Unix only: under Wine 8 a test cannot spawn egs-tool.exe with piped output; the
//! Windows build's `catlet --help` runs under Wine in scripts/test.
#![cfg(unix)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use egs_kvp::store::{KvpStore, PoolId};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

mod common;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};

const KEY: &str = include_str!("data/eryph-test-client.key");
/// What egs-tool says when eryph refuses a scope the client does not hold (eryph's words).
const INVALID_SCOPE: &str =
    "Could not retrieve an access token: invalid_scope. The specified 'scope' is invalid.";

/// What the stand-in knows and has seen.
#[derive(Default)]
struct State {
    /// client id → assigned scopes.
    clients: HashMap<String, Vec<String>>,
    /// Assertion ids seen (a replay is refused).
    jtis: HashSet<String>,
    /// access token → (client, granted scopes, issued).
    tokens: HashMap<String, (String, Vec<String>, Instant)>,
    /// How long access tokens are honoured (eryph's clock), whatever `expires_in` said.
    token_life: Option<Duration>,
    /// Requests refused for an expired access token.
    expired_refusals: u32,
    /// operation id → (polls so far, final status, result).
    operations: HashMap<String, (u32, &'static str, Value)>,
    /// KVP slots eryph would write: slot name → line.
    kvp: HashMap<String, String>,
    /// Settings of the catlet: (shell, shell_args).
    shell: (Option<String>, Option<String>),
    /// Token requests seen, with their scope field.
    token_requests: Vec<String>,
    /// The catlet's name and project.
    catlet: (String, String),
    /// Polls an operation takes to complete (Queued, Running, …, Completed).
    steps: u32,
    /// Channel tokens minted and not yet used → when.
    channels: HashMap<String, Instant>,
    /// Hand out channel tokens that are already used (a stale or replayed token).
    stale_channels: bool,
    /// The guest: the daemon's socket and its KVP pool directory.
    guest: Option<(PathBuf, PathBuf)>,
    /// Cut each relayed connection after this many bytes (both directions together).
    cut_after: Option<u64>,
    /// Connections relayed to the guest.
    relayed: u32,
    /// Let every new operation end as Failed (a stopped catlet).
    fail_operations: bool,
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
    query: HashMap<String, String>,
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
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: form(query),
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
    let final_status = if state.fail_operations {
        "Failed"
    } else {
        final_status
    };
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
        state
            .tokens
            .insert(token.clone(), (client, granted, Instant::now()));
        return respond(
            &mut stream,
            200,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
        );
    }
    // Compute routes: a known bearer token first.
    let Some((client, granted, issued)) = request
        .headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| state.tokens.get(t).cloned())
    else {
        return respond(&mut stream, 401, &Value::Null);
    };
    if state.token_life.is_some_and(|life| issued.elapsed() > life) {
        state.expired_refusals += 1;
        return respond(&mut stream, 401, &Value::Null);
    }
    let need = |scope: &str| passes(&granted, scope);
    let catlet = "/compute/v1/catlets/c0ffee";
    let steps = state.steps.max(1);
    let forbidden = json!({"title": "Forbidden"});
    match (request.method.as_str(), path) {
        ("GET", p) if p.starts_with("/compute/v1/operations/") => {
            let id = &p["/compute/v1/operations/".len()..];
            let Some(op) = state.operations.get_mut(id) else {
                return respond(&mut stream, 404, &Value::Null);
            };
            op.0 += 1;
            let status = match op.0 {
                n if n >= steps => op.1,
                1 => "Queued",
                _ => "Running",
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
            let slot = format!("eryph:guest-services:client-public-key:{client}");
            if let Some((_, pools)) = &state.guest {
                egs_kvp::files::PoolFiles::new(pools)
                    .set(PoolId::External, &slot, &line)
                    .unwrap();
            }
            state.kvp.insert(slot, line);
            let op = start_operation(&mut state, "Completed", Value::Null);
            respond(&mut stream, 202, &op)
        }
        ("DELETE", p) if p == format!("{catlet}/guest-services/access-keys") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            let slot = format!("eryph:guest-services:client-public-key:{client}");
            if let Some((_, pools)) = &state.guest {
                egs_kvp::files::PoolFiles::new(pools)
                    .delete(PoolId::External, &slot)
                    .unwrap();
            }
            state.kvp.remove(&slot);
            let op = start_operation(&mut state, "Completed", Value::Null);
            respond(&mut stream, 202, &op)
        }
        ("GET", p) if p == catlet => {
            if !need("compute:catlets:read") {
                return respond(&mut stream, 403, &forbidden);
            }
            let (name, project) = state.catlet.clone();
            respond(
                &mut stream,
                200,
                &json!({"id": "c0ffee", "name": name, "project": {"id": "p1", "name": project, "tenant_id": "t1"}, "status": "Running"}),
            )
        }
        ("PUT", p) if p == format!("{catlet}/guest-services/ssh-channel") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            let mut random = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .unwrap()
                .read_exact(&mut random)
                .unwrap();
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
            if !state.stale_channels {
                state.channels.insert(token.clone(), Instant::now());
            }
            let expires = Command::new("date")
                .args(["-u", "-d", &format!("@{}", now() + 120)])
                .arg("+%Y-%m-%dT%H:%M:%S.0000000+00:00")
                .output()
                .unwrap();
            let expires = String::from_utf8(expires.stdout).unwrap();
            let op = start_operation(
                &mut state,
                "Completed",
                json!({"result_type": "SshChannel", "token": token, "expires_at": expires.trim()}),
            );
            respond(&mut stream, 202, &op)
        }
        ("GET", p) if p == format!("{catlet}/guest-services/ssh-channel/connect") => {
            if !need("compute:catlets:remote-access") {
                return respond(&mut stream, 403, &forbidden);
            }
            let upgrade = request
                .headers
                .get("upgrade")
                .map(|u| u.to_ascii_lowercase());
            let Some(key) = request
                .headers
                .get("sec-websocket-key")
                .filter(|_| upgrade.as_deref() == Some("websocket"))
            else {
                return respond(
                    &mut stream,
                    400,
                    &json!({"detail": "This endpoint requires a WebSocket request."}),
                );
            };
            let token = request.query.get("token").cloned().unwrap_or_default();
            if token.is_empty() {
                return respond(
                    &mut stream,
                    400,
                    &json!({"detail": "A channel token is required."}),
                );
            }
            let _ = write!(
                stream,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
            );
            // After the upgrade, as eryph's agent: the token is single use and lives 120 s.
            let valid = state
                .channels
                .remove(&token)
                .is_some_and(|minted| minted.elapsed() < Duration::from_secs(120));
            let guest = state
                .guest
                .clone()
                .filter(|_| valid)
                .map(|(socket, _)| socket);
            state.relayed += u32::from(guest.is_some());
            let cut_after = state.cut_after;
            drop(state);
            relay(stream, guest, cut_after);
        }
        (_, p) if p.starts_with("/compute/v1/catlets/") => respond(&mut stream, 404, &Value::Null),
        _ => respond(&mut stream, 404, &Value::Null),
    }
}

/// The accepted WebSocket ↔ the guest's socket (`None`: close at once, a refused token),
/// binary frames both ways; with `cut_after`, the TCP connection is dropped without a close
/// once that many bytes went through.
fn relay(stream: TcpStream, guest: Option<PathBuf>, cut_after: Option<u64>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        stream.set_nonblocking(true).unwrap();
        let tcp = tokio::net::TcpStream::from_std(stream).unwrap();
        let mut socket =
            tokio_tungstenite::WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
        let Some(guest) = guest else {
            let _ = socket.close(None).await;
            return;
        };
        let (mut from_guest, mut to_guest) = tokio::net::UnixStream::connect(guest)
            .await
            .unwrap()
            .into_split();
        let (mut sink, mut source) = socket.split();
        let moved = std::cell::Cell::new(0u64);
        let over = |n: usize| {
            moved.set(moved.get() + n as u64);
            cut_after.is_some_and(|limit| moved.get() > limit)
        };
        let up = async {
            while let Some(Ok(message)) = source.next().await {
                let Message::Binary(bytes) = message else {
                    if let Message::Close(_) = message {
                        break;
                    }
                    continue;
                };
                if over(bytes.len()) || to_guest.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = to_guest.shutdown().await;
            std::future::pending::<()>().await
        };
        let down = async {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match from_guest.read(&mut buffer).await {
                    Ok(0) | Err(_) => {
                        let _ = sink.send(Message::Close(None)).await;
                        return;
                    }
                    Ok(n) => {
                        if over(n) {
                            return;
                        }
                        let frame = Message::Binary(buffer[..n].to_vec().into());
                        if sink.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
}

/// Starts the stand-in; returns its base URL and state.
fn stand_in() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base.clone(), stand_in_at(listener, base))
}

/// The stand-in on `listener`, telling clients it is at `base`.
fn stand_in_at(listener: TcpListener, base: String) -> Arc<Mutex<State>> {
    let state = Arc::new(Mutex::new(State {
        catlet: ("web".into(), "default".into()),
        steps: 3,
        ..State::default()
    }));
    let s = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (s, b) = (s.clone(), base.clone());
            std::thread::spawn(move || handle(&s, &b, stream));
        }
    });
    state
}

/// The stand-in behind TLS, as eryph runs: a CA and a certificate for 127.0.0.1 made with
/// `openssl`, a rustls front that forwards to the plain stand-in. Returns the `https://`
/// base, the state and the CA file (for `SSL_CERT_FILE`, which the system verifier reads).
fn stand_in_with_tls(dir: &Path) -> (String, Arc<Mutex<State>>, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=EGS test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", front.local_addr().unwrap());
    let state = stand_in_at(backend, base.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            front.set_nonblocking(true).unwrap();
            let front = tokio::net::TcpListener::from_std(front).unwrap();
            while let Ok((client, _)) = front.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let mut plain = tokio::net::TcpStream::connect(backend_addr).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    (base, state, dir.join("ca.pem"))
}

/// A fresh HOME whose user store lists `clients`, the first the default client.
fn home(base: &str, clients: &[&str]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join(".config/.eryph");
    std::fs::create_dir_all(store.join("private")).unwrap();
    let listed: Vec<Value> = clients
        .iter()
        .map(|c| json!({"id": c, "name": "test"}))
        .collect();
    std::fs::write(
        store.join("default.config"),
        json!({
            "defaultClientId": clients[0],
            "clients": listed,
            "endpoints": {"identity": format!("{base}/identity"), "compute": format!("{base}/compute")},
        })
        .to_string(),
    )
    .unwrap();
    for client in clients {
        std::fs::write(store.join("private").join(format!("{client}.key")), KEY).unwrap();
    }
    home
}

/// `command` as the user of `home` runs it: that HOME, the tool's files under it.
fn as_user(home: &Path, mut command: Command) -> Command {
    command
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("EGS_TOOL_HOME", home.join("egs"))
        .current_dir(home);
    command
}

fn tool(home: &Path, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(common::binary("egs-tool"));
    command.args(args);
    let out = as_user(home, command).output().unwrap();
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
    let home = home(&base, &["ops"]);
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
    let reader = self::home(&base, &["reader"]);
    let (ok, _, err) = tool(
        reader.path(),
        &["catlet", "add-key", "c0ffee", "--public-key", key_arg],
    );
    assert!(!ok);
    assert!(err.contains(INVALID_SCOPE), "{err}");
    // An operation that fails: eryph's status message, for the control plane and the channel.
    state.lock().unwrap().fail_operations = true;
    let (ok, _, err) = tool(h, &["catlet", "set-shell", "c0ffee", "/bin/sh"]);
    assert!(!ok);
    assert!(
        err.contains("Setting the shell failed: The catlet is not running."),
        "{err}"
    );
    let (ok, _, err) = tool(h, &["catlet", "proxy", "c0ffee"]);
    assert!(!ok);
    assert!(
        err.contains("Starting the SSH channel failed: The catlet is not running."),
        "{err}"
    );
    state.lock().unwrap().fail_operations = false;
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

/// A guest: an `egs-service` daemon on a Unix socket with empty KVP pools and no
/// authorized key of its own (keys come through KVP only).
struct Guest {
    daemon: Child,
    dir: tempfile::TempDir,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn guest() -> (Guest, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let (daemon, _) = common::start_daemon(dir.path(), &format!("unix:{}", socket.display()));
    std::fs::write(dir.path().join("conf/id_egs.pub"), "").unwrap();
    let kvp = dir.path().join("kvp");
    (Guest { daemon, dir }, socket, kvp)
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// A file of `mib` MiB of random bytes.
fn random_file(path: &Path, mib: usize) {
    let out = Command::new("head")
        .args(["-c", &format!("{mib}M"), "/dev/urandom"])
        .stdout(std::fs::File::create(path).unwrap())
        .status()
        .unwrap();
    assert!(out.success());
}

/// The SSH channel end to end: `add-ssh-config --add-key` and the real `ssh`/`sftp` by
/// the catlet's names, the four transfers (256 MiB with matching hashes), a key with a
/// 1-second TTL refused after expiry, a client without the scope, a used channel token,
/// and a relay that drops mid-transfer leaving no truncated file.
#[test]
fn ssh_through_the_eryph_channel() {
    let (base, state) = stand_in();
    let (_guest, socket, pools) = guest();
    let work = _guest.dir.path().join("files");
    std::fs::create_dir_all(&work).unwrap();
    {
        let mut s = state.lock().unwrap();
        for client in ["ops", "ops2"] {
            s.clients
                .insert(client.into(), vec!["compute:catlets:control".into()]);
        }
        s.clients
            .insert("reader".into(), vec!["compute:read".into()]);
        s.guest = Some((socket, pools.clone()));
    }
    let home = home(&base, &["ops", "ops2", "reader"]);
    let h = home.path();

    // The managed key: created on demand, printed without a newline.
    let (ok, key, err) = tool(h, &["catlet", "get-client-key"]);
    assert!(ok, "{err}");
    assert!(
        key.starts_with("ssh-ed25519 ") && !key.ends_with('\n'),
        "{key:?}"
    );
    assert_eq!(
        std::fs::read_to_string(h.join("egs/private/id_egs.pub"))
            .unwrap()
            .trim(),
        key
    );

    // Before any key is pushed, the guest refuses the login.
    let (ok, _, err) = tool(
        h,
        &["catlet", "upload-file", "c0ffee", "/etc/hostname", "/tmp/x"],
    );
    assert!(!ok && err.contains("does not accept this key"), "{err}");

    let (ok, out, err) = tool(h, &["catlet", "add-ssh-config", "c0ffee", "--add-key"]);
    assert!(ok, "{err}");
    for name in ["web.eryph.alt", "web.default.eryph.alt", "c0ffee.eryph.alt"] {
        assert!(out.contains(&format!("  ssh {name}")), "{out}");
    }
    let stanza =
        std::fs::read_to_string(h.join("egs/ssh/catlet.d/c0ffee.eryph.alt.config")).unwrap();
    assert!(
        stanza.contains("Host c0ffee.eryph.alt web.default.eryph.alt web.eryph.alt\n")
            && stanza.contains("    HostName c0ffee.eryph.alt\n")
            && stanza.contains(&format!(
                "    IdentityFile \"{}\"\n",
                h.join("egs/private/id_egs").display()
            ))
            && stanza.contains(" catlet proxy c0ffee\n"),
        "{stanza}"
    );
    let config = std::fs::read_to_string(h.join(".ssh/config")).unwrap();
    assert!(
        config.contains("catlet.d/*.config") && config.contains("vm.d/*.config"),
        "{config}"
    );
    // The key is in the client's slot of the guest's External pool, as eryph writes it.
    let slot = egs_kvp::files::PoolFiles::new(&pools)
        .get(
            PoolId::External,
            "eryph:guest-services:client-public-key:ops",
        )
        .unwrap();
    assert_eq!(slot.as_deref(), Some(key.as_str()));

    // The real ssh and sftp through `egs-tool catlet proxy`.
    let ssh = |host: &str, command: &str| {
        let mut c = Command::new("timeout");
        c.args(["60", "ssh", "-F"])
            .arg(h.join(".ssh/config"))
            .args(["-o", "BatchMode=yes", host, command]);
        common::code_and_output(&mut as_user(h, c))
    };
    for host in ["web.eryph.alt", "web.default.eryph.alt", "c0ffee.eryph.alt"] {
        let (code, out) = ssh(host, "echo through-eryph; exit 3");
        assert_eq!(code, 3, "{host}: {out}");
        assert!(out.contains("through-eryph"), "{out}");
    }
    // The proxy itself: the guest's greeting on stdout, exit 0 once stdin ends.
    let mut proxy = Command::new(common::binary("egs-tool"));
    proxy
        .args(["catlet", "proxy", "c0ffee"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = as_user(h, proxy).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SSH-2.0-probe\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.starts_with(b"SSH-2.0-"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let small = work.join("small.txt");
    std::fs::write(&small, "sftp through eryph\n").unwrap();
    let batch = work.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            small.display(),
            work.join("small.up").display(),
            work.join("small.up").display(),
            work.join("small.back").display()
        ),
    )
    .unwrap();
    let mut sftp = Command::new("timeout");
    sftp.args(["60", "sftp", "-F"])
        .arg(h.join(".ssh/config"))
        .arg("-b")
        .arg(&batch)
        .arg("web.eryph.alt");
    let (code, out) = common::code_and_output(&mut as_user(h, sftp));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(work.join("small.back")).unwrap(),
        "sftp through eryph\n"
    );

    // The four transfers, in process over the WebSocket; 256 MiB keeps its hash.
    let big = work.join("big.bin");
    random_file(&big, 256);
    let s = |p: &Path| p.display().to_string();
    let transfer = |command: &str, from: &str, to: &str, extra: &[&str]| {
        let mut args = vec!["catlet", command, "c0ffee", from, to];
        args.extend(extra);
        tool(h, &args)
    };
    let (ok, _, err) = transfer("upload-file", &s(&big), &s(&work.join("big.up")), &[]);
    assert!(ok, "{err}");
    assert_eq!(sha256(&work.join("big.up")), sha256(&big));
    let (ok, _, err) = transfer(
        "download-file",
        &s(&work.join("big.up")),
        &s(&work.join("big.down")),
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(sha256(&work.join("big.down")), sha256(&big));
    std::fs::remove_file(work.join("big.down")).unwrap();
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("a/b/c.txt"), "deep").unwrap();
    std::fs::write(tree.join("top.txt"), "top").unwrap();
    let (ok, _, err) = transfer(
        "upload-directory",
        &s(&tree),
        &s(&work.join("tree.up")),
        &["--recursive"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = transfer(
        "download-directory",
        &s(&work.join("tree.up")),
        &s(&work.join("tree.down")),
        &["--recursive"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("tree.down/a/b/c.txt")).unwrap(),
        "deep"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("tree.down/top.txt")).unwrap(),
        "top"
    );
    let (ok, _, err) = transfer("upload-file", &s(&small), &s(&work.join("small.up")), &[]);
    assert!(!ok && err.contains("exists"), "no --overwrite: {err}");

    // A key of its own (--identity) with a TTL: it logs in while valid, not after.
    let byok = work.join("byok");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&byok)
        .status()
        .unwrap();
    assert!(made.success());
    let byok_pub = format!("{}.pub", byok.display());
    let with_byok = |extra: &[&str]| {
        let mut args = vec!["catlet", "download-file", "c0ffee", "/etc/hostname"];
        let target = s(&work.join("hostname.copy"));
        args.push(&target);
        args.extend([
            "--overwrite",
            "--identity",
            byok.to_str().unwrap(),
            "--client-id",
            "ops2",
        ]);
        args.extend(extra);
        tool(h, &args)
    };
    let (ok, out, err) = tool(
        h,
        &[
            "catlet",
            "add-key",
            "c0ffee",
            "--public-key",
            &byok_pub,
            "--ttl",
            "1h",
            "--client-id",
            "ops2",
        ],
    );
    assert!(
        ok && out.starts_with("The key was added and expires at "),
        "{out}{err}"
    );
    let (ok, _, err) = with_byok(&[]);
    assert!(ok, "valid key: {err}");
    let (ok, _, err) = tool(
        h,
        &[
            "catlet",
            "add-key",
            "c0ffee",
            "--public-key",
            &byok_pub,
            "--ttl",
            "1s",
            "--client-id",
            "ops2",
        ],
    );
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_secs(2));
    let (ok, _, err) = with_byok(&[]);
    assert!(
        !ok && err.contains("does not accept this key"),
        "expired key: {err}"
    );
    // The other client's slot is untouched: the managed key still logs in.
    assert_eq!(ssh("web.eryph.alt", "echo still").0, 0);

    // No remote-access scope: eryph's refusal, word for word, before any channel.
    let (ok, _, err) = transfer(
        "upload-file",
        &s(&small),
        "/tmp/y",
        &["--client-id", "reader"],
    );
    assert!(!ok);
    assert!(err.contains(INVALID_SCOPE), "{err}");
    // A used or stale channel token: eryph accepts the WebSocket and closes it at once.
    state.lock().unwrap().stale_channels = true;
    let (ok, _, err) = tool(
        h,
        &["catlet", "upload-file", "c0ffee", &s(&small), "/tmp/y"],
    );
    assert!(
        !ok && err.contains("the channel token was refused, used or expired"),
        "{err}"
    );
    let (code, out) = ssh("web.eryph.alt", "true");
    assert_ne!(code, 0);
    assert!(
        out.contains("the channel token was refused, used or expired"),
        "{out}"
    );
    state.lock().unwrap().stale_channels = false;

    // The relay drops mid-transfer: the command fails and no truncated file is left.
    let mid = work.join("mid.bin");
    random_file(&mid, 32);
    state.lock().unwrap().cut_after = Some(4 << 20);
    let (ok, _, err) = transfer("upload-file", &s(&mid), &s(&work.join("mid.up")), &[]);
    assert!(!ok, "a cut upload must fail");
    assert!(!work.join("mid.up").exists(), "{err}");
    let local = tempfile::tempdir().unwrap();
    let (ok, _, _) = transfer(
        "download-file",
        &s(&mid),
        &s(&local.path().join("mid.down")),
        &[],
    );
    assert!(!ok, "a cut download must fail");
    assert_eq!(
        std::fs::read_dir(local.path()).unwrap().count(),
        0,
        "nothing partial is left"
    );
    state.lock().unwrap().cut_after = None;
    assert!(state.lock().unwrap().relayed >= 10);
}

/// eryph stops honouring an access token before its `expires_in` (its clock, a
/// revocation): the 401 makes the client fetch a fresh token and carry on.
#[test]
fn an_expired_access_token_is_refreshed() {
    let (base, state) = stand_in();
    {
        let mut s = state.lock().unwrap();
        s.clients
            .insert("ops".into(), vec!["compute:catlets:control".into()]);
        s.token_life = Some(Duration::from_millis(1500));
    }
    let home = home(&base, &["ops"]);
    let before = state.lock().unwrap().token_requests.len();
    // Three polls a second apart: the last one's token has expired on eryph's side.
    let (ok, out, err) = tool(home.path(), &["catlet", "get-status", "c0ffee"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Guest services: available"), "{out}");
    let s = state.lock().unwrap();
    assert!(
        s.expired_refusals >= 1,
        "the stand-in never refused a token"
    );
    assert!(
        s.token_requests.len() - before >= 3,
        "{:?}",
        s.token_requests
    );
}

/// eryph over TLS: the control plane (`https`) and the SSH channel (`wss`) verify the
/// server against the operating system's trust store (here `SSL_CERT_FILE`, which the
/// system verifier reads on Linux), print no "unencrypted" warning, and refuse a server
/// whose CA the system does not trust.
#[test]
fn tls_endpoints_are_verified_against_the_system_store() {
    let certs = tempfile::tempdir().unwrap();
    let (base, state, ca) = stand_in_with_tls(certs.path());
    let (_guest, socket, pools) = guest();
    {
        let mut s = state.lock().unwrap();
        s.clients
            .insert("ops".into(), vec!["compute:catlets:control".into()]);
        s.guest = Some((socket, pools));
        s.steps = 1;
    }
    let home = home(&base, &["ops"]);
    let h = home.path();
    let trusted = |args: &[&str]| {
        let mut command = Command::new(common::binary("egs-tool"));
        command
            .args(args)
            .env("SSL_CERT_FILE", &ca)
            .env_remove("SSL_CERT_DIR");
        let out = as_user(h, command).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = trusted(&["catlet", "get-status", "c0ffee"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Guest services: available"), "{out}");
    assert!(!err.contains("unencrypted"), "{err}");
    let (ok, _, err) = trusted(&["catlet", "add-key", "c0ffee"]);
    assert!(ok, "{err}");
    let file = certs.path().join("over-wss.txt");
    std::fs::write(&file, "through TLS\n").unwrap();
    let target = certs.path().join("over-wss.up");
    let (ok, _, err) = trusted(&[
        "catlet",
        "upload-file",
        "c0ffee",
        file.to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "through TLS\n");
    // Without the CA in the store the server is not trusted.
    let empty = certs.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let mut command = Command::new(common::binary("egs-tool"));
    command
        .args(["catlet", "get-status", "c0ffee"])
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", certs.path().join("none"));
    let out = as_user(h, command).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");
}

/// Benchmark, not a test (`bench/eryph-relay.sh` runs it on a release build): the same
/// daemon reached directly on its Unix socket and through the stand-in's WebSocket relay,
/// connect latency (a whole `download-file` of a small file, the median of 5) and
/// throughput of an upload and a download (`EGS_BENCH_MIB`, default 256), with ratios.
#[test]
#[ignore = "benchmark: bench/eryph-relay.sh"]
fn relay_vs_direct_benchmark() {
    let mib: u64 = std::env::var("EGS_BENCH_MIB")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(256);
    let (base, state) = stand_in();
    let (_guest, socket, pools) = guest();
    {
        let mut s = state.lock().unwrap();
        s.clients
            .insert("ops".into(), vec!["compute:catlets:control".into()]);
        s.guest = Some((socket.clone(), pools));
        s.steps = 1;
    }
    let home = home(&base, &["ops"]);
    let h = home.path();
    let (ok, _, err) = tool(h, &["catlet", "add-key", "c0ffee"]);
    assert!(ok, "{err}");
    let work = _guest.dir.path().join("bench");
    std::fs::create_dir_all(&work).unwrap();
    let small = work.join("small");
    std::fs::write(&small, "x").unwrap();
    let payload = work.join("payload");
    random_file(&payload, mib as usize);
    let direct = format!("unix:{}", socket.display());
    let s = |p: &Path| p.display().to_string();
    let timed = |args: &[&str]| {
        let start = Instant::now();
        let (ok, _, err) = tool(h, args);
        assert!(ok, "{args:?}: {err}");
        start.elapsed().as_secs_f64()
    };
    let median = |args: &[&str]| {
        let mut times: Vec<f64> = (0..5).map(|_| timed(args)).collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    let copy = s(&work.join("small.copy"));
    let connect_direct = median(&["download-file", &direct, &s(&small), &copy, "--overwrite"]);
    let connect_relay = median(&[
        "catlet",
        "download-file",
        "c0ffee",
        &s(&small),
        &copy,
        "--overwrite",
    ]);
    let mut rows = Vec::new();
    for (name, prefix) in [
        ("direct", vec![direct.as_str()]),
        ("relay", vec!["catlet", "c0ffee"]),
    ] {
        let with = |command: &str, from: &Path, to: &Path| {
            let mut args: Vec<String> = Vec::new();
            if prefix.len() == 2 {
                args.extend(["catlet".into(), command.into(), "c0ffee".into()]);
            } else {
                args.extend([command.into(), prefix[0].into()]);
            }
            args.extend([s(from), s(to), "--overwrite".into()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            timed(&args)
        };
        let (up_file, back) = (
            work.join(format!("{name}.up")),
            work.join(format!("{name}.back")),
        );
        let up = with("upload-file", &payload, &up_file);
        let down = with("download-file", &up_file, &back);
        assert_eq!(sha256(&back), sha256(&payload));
        std::fs::remove_file(&up_file).unwrap();
        std::fs::remove_file(&back).unwrap();
        rows.push((name, up, down));
    }
    let rate = |seconds: f64| format!("{:.0} MiB/s", mib as f64 / seconds);
    println!();
    println!("egs-tool to one egs-service daemon: direct (Unix socket) vs the eryph relay (WebSocket, loopback)");
    println!(
        "{:<8} {:>14} {:>14} {:>16}",
        "", "upload", "download", "connect+1 byte"
    );
    for ((name, up, down), connect) in rows.iter().zip([connect_direct, connect_relay]) {
        println!(
            "{name:<8} {:>14} {:>14} {:>13.0} ms",
            rate(*up),
            rate(*down),
            connect * 1000.0
        );
    }
    println!(
        "relay ÷ direct (time): upload {:.2}, download {:.2}, connect {:.2}",
        rows[1].1 / rows[0].1,
        rows[1].2 / rows[0].2,
        connect_relay / connect_direct
    );
}
