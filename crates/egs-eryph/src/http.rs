//! HTTP for the eryph API: one agent (rustls with the operating system's certificate
//! verifier), statuses returned rather than raised, a
//! bounded body, the bearer token in a header (never a URL or a log).

use std::time::Duration;

/// Largest answer read from eryph.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// The HTTP client.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Http {
        Http::new()
    }
}

impl Http {
    /// A client with a 30-second timeout per request.
    pub fn new() -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .user_agent(concat!("egs-tool/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent }
    }

    /// `GET`, with a bearer token when given.
    pub fn get(&self, url: &str, bearer: Option<&str>) -> Result<(u16, Vec<u8>), String> {
        let mut request = self
            .agent
            .get(url)
            .header("Accept", "application/json, application/problem+json");
        if let Some(token) = bearer {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        answer(url, request.call())
    }

    /// `POST` of a form.
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        answer(url, self.agent.post(url).send_form(form.iter().copied()))
    }

    /// `PUT`, `POST`, `PATCH` or `DELETE` with a bearer token and an optional JSON body.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        bearer: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), String> {
        let auth = format!("Bearer {bearer}");
        let accept = "application/json, application/problem+json";
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let with_body = |request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            request
                .header("Authorization", &auth)
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .send(text.as_bytes())
        };
        let result = match method {
            "PUT" => with_body(self.agent.put(url)),
            "POST" => with_body(self.agent.post(url)),
            "PATCH" => with_body(self.agent.patch(url)),
            "DELETE" => self
                .agent
                .delete(url)
                .header("Authorization", &auth)
                .header("Accept", accept)
                .call(),
            other => return Err(format!("unsupported method {other}")),
        };
        answer(url, result)
    }
}

fn answer(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, Vec<u8>), String> {
    let mut response = result.map_err(|e| format!("{}: {e}", without_query(url)))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| format!("{}: {e}", without_query(url)))?;
    Ok((status, body))
}

/// A URL for a message: its query (a channel token) left out.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// .NET's `HttpStatusCode` name of a status, as eryph's client messages print it.
pub fn status_name(status: u16) -> String {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        other => return other.to_string(),
    }
    .to_string()
}
