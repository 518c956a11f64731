//! eryph's compute API as `egs-tool catlet …` uses it (`eryph-client-contract.md` §6,
//! `original-remote-access.md` §5.3): routes under `<compute>/v1/`, least-privilege
//! scopes per call, operations polled until they end, problem details as errors, and the
//! control-plane commands built on them (`get-status`, `set-shell`, `add-key`,
//! `remove-key`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::duration;
use crate::http::{status_name, Http};
use crate::token::TokenSource;

/// Scope of the catlet lookup and the status.
pub const READ: &str = "compute:catlets:read";
/// Scope of the SSH channel, keys and settings.
pub const REMOTE_ACCESS: &str = "compute:catlets:remote-access";

/// A connection to one eryph.
pub struct Compute {
    base: String,
    http: Http,
    tokens: TokenSource,
}

/// How often and how long the control-plane operations are polled.
const CONTROL_POLL: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(120));
/// How often and how long the SSH channel's operation is polled (the original's cadence).
const CHANNEL_POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// An SSH channel eryph opened: where to connect the WebSocket (the one-time channel token
/// in its query) and the bearer token to send. Both are secrets: no `Debug`, never printed.
pub struct SshChannel {
    /// `ws[s]://…/ssh-channel/connect?token=…`.
    pub url: String,
    /// An access token with the remote-access scope.
    pub bearer: String,
}

/// What `add-ssh-config` needs of a catlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catlet {
    /// Its id.
    pub id: String,
    /// Its name, when it has one.
    pub name: Option<String>,
    /// Its project's name, when known.
    pub project: Option<String>,
}

/// `<compute>/v1/<relative>`, slashes normalised as the original's `BuildComputeUri`.
pub fn compute_uri(compute: &str, relative: &str) -> String {
    format!(
        "{}/v1/{}",
        compute.trim_end_matches('/'),
        relative.trim_start_matches('/')
    )
}

/// A catlet id as one path segment (letters, digits and `-` as they are, the rest escaped).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The message of a failed call: the problem detail's `detail` or `title`, else the status.
pub(crate) fn failure(what: &str, status: u16, body: &[u8]) -> String {
    let problem: Option<Value> = serde_json::from_slice(body).ok();
    let text = problem.as_ref().and_then(|p| {
        p.get("detail")
            .or_else(|| p.get("title"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match (status, text) {
        (404, None) => format!("{what}: the catlet was not found (or you may not read it)."),
        (_, Some(text)) => format!("{what}: {text}"),
        (_, None) => format!("{what}: the server responded with {}.", status_name(status)),
    }
}

impl Compute {
    /// A connection through these tokens to the `compute` endpoint.
    pub fn new(compute: &str, http: Http, tokens: TokenSource) -> Compute {
        Compute {
            base: compute.to_string(),
            http,
            tokens,
        }
    }

    /// One request with a token for `scopes`. A 401 means eryph no longer takes the token
    /// (it expired by the server's clock, or was revoked): it is forgotten and the request
    /// made once more with a fresh one.
    fn call(
        &self,
        method: &str,
        url: &str,
        scopes: &[&str],
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut retried = false;
        loop {
            let token = self.tokens.token(scopes)?;
            let answer = if method == "GET" {
                self.http.get(url, Some(&token))?
            } else {
                self.http.send(method, url, &token, body)?
            };
            if answer.0 != 401 || retried {
                return Ok(answer);
            }
            self.tokens.forget();
            retried = true;
        }
    }

    /// Starts an operation (`202` with an `Operation`) and returns its id.
    fn start(
        &self,
        what: &str,
        method: &str,
        relative: &str,
        scope: &str,
        body: Option<&Value>,
    ) -> Result<String, String> {
        let url = compute_uri(&self.base, relative);
        let (status, answer) = self.call(method, &url, &[scope], body)?;
        if status != 202 {
            return Err(failure(what, status, &answer));
        }
        let operation: Value = serde_json::from_slice(&answer)
            .map_err(|e| format!("{what}: the operation is not JSON: {e}"))?;
        operation
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{what}: the operation has no id"))
    }

    /// Polls an operation until it is Completed or Failed (Cancelled keeps polling, as the
    /// original does); a poll that fails is tried again at the next tick.
    fn wait(
        &self,
        what: &str,
        id: &str,
        timeout_message: &str,
        (every, limit): (Duration, Duration),
    ) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        let url = compute_uri(&self.base, &format!("operations/{}", segment(id)));
        loop {
            if let Ok((200, body)) = self.call("GET", &url, &[], None) {
                if let Ok(operation) = serde_json::from_slice::<Value>(&body) {
                    let status = operation
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    match status.as_str() {
                        "completed" => return Ok(operation),
                        "failed" => {
                            let message = operation
                                .get("status_message")
                                .and_then(Value::as_str)
                                .unwrap_or("no reason given");
                            return Err(format!("{what} failed: {message}"));
                        }
                        _ => {}
                    }
                }
            }
            if Instant::now() + every > deadline {
                return Err(timeout_message.to_string());
            }
            std::thread::sleep(every);
        }
    }

    /// The catlet's id, name and project (`GET /v1/catlets/{id}`, read scope).
    pub fn catlet(&self, catlet: &str) -> Result<Catlet, String> {
        let what = "Reading the catlet";
        let url = compute_uri(&self.base, &format!("catlets/{}", segment(catlet)));
        let (status, body) = self.call("GET", &url, &[READ], None)?;
        if status != 200 {
            return Err(failure(what, status, &body));
        }
        let catlet: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{what}: the answer is not JSON: {e}"))?;
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        Ok(Catlet {
            id: text(catlet.get("id")).ok_or_else(|| format!("{what}: the answer has no id"))?,
            name: text(catlet.get("name")),
            project: text(catlet.get("project").and_then(|p| p.get("name"))),
        })
    }

    /// Opens the catlet's SSH channel (§5.4): `PUT …/ssh-channel` without a key, the
    /// operation polled every 500 ms for up to 30 s for its `SshChannel` result, and a
    /// remote-access token for the WebSocket.
    pub fn open_ssh_channel(&self, catlet: &str) -> Result<SshChannel, String> {
        let what = "Starting the SSH channel";
        let id = self.start(
            what,
            "PUT",
            &format!("catlets/{}/guest-services/ssh-channel", segment(catlet)),
            REMOTE_ACCESS,
            None,
        )?;
        let operation = self.wait(
            what,
            &id,
            "Timed out waiting for eryph to open the SSH channel.",
            CHANNEL_POLL,
        )?;
        let result = operation.get("result").cloned().unwrap_or(Value::Null);
        let token = match (
            result.get("result_type").and_then(Value::as_str),
            result.get("token").and_then(Value::as_str),
        ) {
            (Some("SshChannel"), Some(token)) if !token.is_empty() => token.to_string(),
            _ => return Err(format!("{what} failed: eryph returned no channel token.")),
        };
        let bearer = self
            .tokens
            .token(&[REMOTE_ACCESS])
            .map_err(|e| format!("Failed to acquire an access token: {e}"))?;
        let relative = format!(
            "catlets/{}/guest-services/ssh-channel/connect?token={}",
            segment(catlet),
            segment(&token)
        );
        let http = compute_uri(&self.base, &relative);
        let url = match http.get(..8).map(str::to_ascii_lowercase).as_deref() {
            Some("https://") => format!("wss://{}", &http[8..]),
            _ => format!("ws://{}", http.get(7..).unwrap_or_default()),
        };
        Ok(SshChannel { url, bearer })
    }

    /// `catlet get-status`: the four lines of §5.3.
    pub fn get_status(&self, catlet: &str) -> Result<String, String> {
        let what = "Reading the guest services status";
        let id = self.start(
            what,
            "GET",
            &format!("catlets/{}/guest-services", segment(catlet)),
            READ,
            None,
        )?;
        let operation = self.wait(
            what,
            &id,
            "Timed out waiting for the guest services status.",
            CONTROL_POLL,
        )?;
        let result = operation.get("result").cloned().unwrap_or(Value::Null);
        let field = |name: &str| {
            result
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(format!(
            "Guest services: {}\nVersion: {}\nProvisioning: {}\nShell: {}",
            field("guest_services_status").unwrap_or_else(|| "unknown".into()),
            field("guest_services_version").unwrap_or_else(|| "-".into()),
            field("provisioning_state").unwrap_or_else(|| "-".into()),
            field("shell").unwrap_or_else(|| "-".into()),
        ))
    }

    /// `catlet set-shell`: an empty shell clears it (and its arguments).
    pub fn set_shell(
        &self,
        catlet: &str,
        shell: &str,
        args: Option<&str>,
    ) -> Result<String, String> {
        for (name, value) in [("shell", Some(shell)), ("--args", args)] {
            if value.is_some_and(|v| v.chars().count() > 512) {
                return Err(format!("The {name} may be at most 512 characters."));
            }
        }
        let body = json!({"shell": shell, "shell_args": args.unwrap_or("")});
        let what = "Setting the shell";
        let id = self.start(
            what,
            "PATCH",
            &format!("catlets/{}/guest-services/settings", segment(catlet)),
            REMOTE_ACCESS,
            Some(&body),
        )?;
        self.wait(
            what,
            &id,
            "Timed out waiting for the shell to be set.",
            CONTROL_POLL,
        )?;
        Ok(if shell.is_empty() {
            "The shell override was removed; new sessions use the default shell.".into()
        } else {
            format!("New sessions use '{shell}'.")
        })
    }

    /// `catlet add-key`: does not wait for the operation (as the original).
    pub fn add_key(
        &self,
        catlet: &str,
        public_key: &str,
        ttl: Option<&str>,
    ) -> Result<String, String> {
        let key = public_key.trim();
        if key.is_empty() || key.chars().count() > 2048 || key.contains(['\r', '\n', '"']) {
            return Err(
                "The public key must be one authorized_keys line of at most 2048 characters without quotes."
                    .into(),
            );
        }
        let mut body = json!({"public_key": key});
        let mut expires = None;
        if let Some(ttl) = ttl {
            let seconds = duration::parse(ttl)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            let at = now + seconds;
            body["ttl"] = Value::String(duration::iso8601(seconds));
            body["expires_at"] = Value::String(duration::round_trip(at));
            expires = Some(duration::display(at));
        }
        self.start(
            "Adding the key",
            "POST",
            &format!("catlets/{}/guest-services/access-keys", segment(catlet)),
            REMOTE_ACCESS,
            Some(&body),
        )?;
        Ok(match expires {
            Some(at) => format!("The key was added and expires at {at}."),
            None => "The key was added.".into(),
        })
    }

    /// `catlet remove-key`: the caller's own slot; does not wait.
    pub fn remove_key(&self, catlet: &str) -> Result<String, String> {
        self.start(
            "Removing the key",
            "DELETE",
            &format!("catlets/{}/guest-services/access-keys", segment(catlet)),
            REMOTE_ACCESS,
            None,
        )?;
        Ok(format!(
            "The key of the client '{}' was removed.",
            self.tokens.client_id()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_problem_details() {
        assert_eq!(
            compute_uri("https://h/compute/", "/catlets/x"),
            "https://h/compute/v1/catlets/x"
        );
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(
            failure(
                "Adding the key",
                400,
                br#"{"title": "Bad", "detail": "The expiry must be in the future."}"#
            ),
            "Adding the key: The expiry must be in the future."
        );
        assert_eq!(
            failure("x", 404, b""),
            "x: the catlet was not found (or you may not read it)."
        );
        assert_eq!(
            failure("x", 403, b""),
            "x: the server responded with Forbidden."
        );
    }
}
