//! Access tokens from eryph's identity endpoint (`eryph-client-contract.md` §5): the
//! discovery document before every request (its `issuer` and
//! `eryph_client_assertion_audience` decide the assertion's audience and `typ`), an RS256
//! JWT client assertion (iss = sub = client id, a fresh `jti`, 5 minutes), the
//! client-credentials form with `scope` space-separated (empty: every scope the client
//! has), and the answer's errors in eryph's words. Tokens are kept in memory per scope
//! set until shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};

use crate::config::Credentials;
use crate::http::Http;

/// How long an assertion is valid.
const ASSERTION_LIFETIME: u64 = 5 * 60;
/// A cached token is not used in its last minute.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// `url` with `segment` appended to its path (`/` added only when missing), as the
/// client libraries build the token and discovery URLs.
pub fn append_path(url: &str, segment: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = base.trim_end_matches('/').to_string();
    out.push('/');
    out.push_str(segment.trim_start_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The audience and `typ` of the assertion, from the discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionTarget {
    /// `aud`.
    pub audience: String,
    /// Header `typ`.
    pub typ: &'static str,
}

/// Reads the discovery document as §5.2 says: `eryph_client_assertion_audience: issuer`
/// means the issuer and `client-authentication+jwt`; otherwise the token endpoint and `JWT`.
pub fn assertion_target(
    discovery: &Value,
    token_endpoint: &str,
) -> Result<AssertionTarget, String> {
    let advertised = discovery
        .get("eryph_client_assertion_audience")
        .and_then(Value::as_str);
    if advertised.is_some_and(|a| a.eq_ignore_ascii_case("issuer")) {
        let issuer = discovery
            .get("issuer")
            .and_then(Value::as_str)
            .filter(|i| !i.is_empty())
            .ok_or("The identity provider's discovery document names no issuer.")?;
        return Ok(AssertionTarget {
            audience: issuer.to_string(),
            typ: "client-authentication+jwt",
        });
    }
    Ok(AssertionTarget {
        audience: token_endpoint.to_string(),
        typ: "JWT",
    })
}

/// A new GUID in .NET's lower-case "D" form (random, version 4).
fn guid() -> Result<String, String> {
    egs_sys::random::uuid4().map_err(|e| format!("no randomness for a token request: {e}"))
}

/// The signed client assertion for `credentials` at `now` (seconds since the epoch).
pub fn client_assertion(
    credentials: &Credentials,
    target: &AssertionTarget,
    now: u64,
) -> Result<String, String> {
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&credentials.private_key_pem).map_err(|e| {
        format!(
            "The private key of the client '{}' is not a PKCS#1 RSA key (BEGIN RSA PRIVATE KEY): {e}",
            credentials.client_id
        )
    })?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "RS256", "typ": target.typ});
    let claims = json!({
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": target.audience,
        "jti": guid()?,
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
    let signature = signer
        .try_sign(signing_input.as_bytes())
        .map_err(|e| format!("signing the client assertion failed: {e}"))?;
    Ok(format!(
        "{signing_input}.{}",
        b64.encode(signature.to_bytes())
    ))
}

/// Tokens of one client, cached per scope set.
pub struct TokenSource {
    credentials: Credentials,
    http: Http,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl TokenSource {
    /// A source for these credentials.
    pub fn new(credentials: Credentials, http: Http) -> TokenSource {
        TokenSource {
            credentials,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The credentials' client id.
    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// A token for `scopes` (none: every scope the client has), from the cache or new.
    pub fn token(&self, scopes: &[&str]) -> Result<String, String> {
        let scope = scopes.join(" ");
        if let Some((token, until)) = self.cache.lock().expect("not poisoned").get(&scope) {
            if Instant::now() + EXPIRY_MARGIN < *until {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.request(&scope)?;
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(scope, (token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Forgets cached tokens (after the API refused one).
    pub fn forget(&self) {
        self.cache.lock().expect("not poisoned").clear();
    }

    fn request(&self, scope: &str) -> Result<(String, Duration), String> {
        let identity = &self.credentials.identity;
        let token_endpoint = append_path(identity, "connect/token");
        let discovery_url = append_path(identity, ".well-known/openid-configuration");
        let unreadable =
            || "Could not read the identity provider's discovery document.".to_string();
        let (status, body) = self
            .http
            .get(&discovery_url, None)
            .map_err(|e| format!("{} ({e})", unreadable()))?;
        if status != 200 {
            return Err(unreadable());
        }
        let discovery: Value = serde_json::from_slice(&body).map_err(|_| unreadable())?;
        let target = assertion_target(&discovery, &token_endpoint)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let assertion = client_assertion(&self.credentials, &target, now)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.credentials.client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("scope", scope),
        ];
        let (status, body) = self.http.post_form(&token_endpoint, &form)?;
        token_answer(status, &body)
    }
}

/// The token and its lifetime from the token endpoint's answer, or eryph's error text.
pub fn token_answer(status: u16, body: &[u8]) -> Result<(String, Duration), String> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if status == 400 {
        if let Some(error) = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
        {
            let description = json
                .as_ref()
                .and_then(|j| j.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(format!(
                "Could not retrieve an access token: {error}. {description}"
            ));
        }
    }
    if !(200..300).contains(&status) {
        return Err(format!(
            "Could not retrieve an access token. The server responded with {}.",
            crate::http::status_name(status)
        ));
    }
    let token = json
        .as_ref()
        .and_then(|j| j.get("access_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(
            "Could not retrieve an access token. The access token is missing in the response.",
        )?;
    let lifetime = json
        .as_ref()
        .and_then(|j| j.get("expires_in"))
        .and_then(Value::as_u64)
        .unwrap_or(300);
    Ok((token.to_string(), Duration::from_secs(lifetime)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_as_the_client_libraries_build_them() {
        assert_eq!(
            append_path("https://host:8000/identity", "connect/token"),
            "https://host:8000/identity/connect/token"
        );
        assert_eq!(
            append_path("https://host:8000/identity/", "connect/token"),
            "https://host:8000/identity/connect/token"
        );
        assert_eq!(
            append_path("http://eryph.io/", ".well-known/openid-configuration"),
            "http://eryph.io/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_discovery_document_decides_audience_and_typ() {
        let new = json!({"issuer": "https://id/", "eryph_client_assertion_audience": "Issuer"});
        assert_eq!(
            assertion_target(&new, "https://id/connect/token").unwrap(),
            AssertionTarget {
                audience: "https://id/".into(),
                typ: "client-authentication+jwt"
            }
        );
        let old = json!({"issuer": "https://id/"});
        assert_eq!(
            assertion_target(&old, "https://id/connect/token").unwrap(),
            AssertionTarget {
                audience: "https://id/connect/token".into(),
                typ: "JWT"
            }
        );
        assert!(
            assertion_target(&json!({"eryph_client_assertion_audience": "issuer"}), "t").is_err()
        );
    }

    #[test]
    fn token_answers_and_errors_in_eryphs_words() {
        let (token, lifetime) =
            token_answer(200, br#"{"access_token": "abc", "expires_in": 3600}"#).unwrap();
        assert_eq!((token.as_str(), lifetime.as_secs()), ("abc", 3600));
        assert_eq!(
            token_answer(
                400,
                br#"{"error": "invalid_scope", "error_description": "The scope is not allowed."}"#
            )
            .unwrap_err(),
            "Could not retrieve an access token: invalid_scope. The scope is not allowed."
        );
        assert_eq!(
            token_answer(503, b"").unwrap_err(),
            "Could not retrieve an access token. The server responded with ServiceUnavailable."
        );
        assert_eq!(
            token_answer(200, br#"{"access_token": ""}"#).unwrap_err(),
            "Could not retrieve an access token. The access token is missing in the response."
        );
    }

    #[test]
    fn guids_are_version_4_lower_case() {
        let g = guid().unwrap();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_eq!(g, g.to_lowercase());
        assert_ne!(g, guid().unwrap());
    }
}
