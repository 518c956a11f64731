//! eryph's client contract (`eryph-client-contract.md`), as `egs-tool catlet …` needs it:
//! `config` finds the client, its key and the endpoints in the config stores; `token`
//! gets access tokens with an RS256 client assertion; `compute` speaks the compute API
//! (routes, operations, the control-plane commands); `duration` reads `--ttl`; `http` is
//! the one HTTP client. No OS calls but file reads and sockets.

pub mod compute;
pub mod config;
pub mod duration;
pub mod http;
pub mod token;

use compute::Compute;
use http::Http;
use token::TokenSource;

/// The message when an endpoint is plain HTTP.
pub const UNENCRYPTED: &str =
    "Connecting over an unencrypted channel; the access token is not protected.";

/// The compute API for a configuration and client (defaults: `default` and its default
/// client), found in the config stores; with the warning text when an endpoint is `http://`.
pub fn connect(
    configuration: Option<&str>,
    client_id: Option<&str>,
) -> Result<(Compute, Option<&'static str>), String> {
    let credentials = config::resolve(&config::store_dirs(), configuration, client_id)?;
    let plain = [&credentials.identity, &credentials.compute]
        .iter()
        .any(|e| e.to_ascii_lowercase().starts_with("http://"));
    let http = Http::new();
    let compute = credentials.compute.clone();
    Ok((
        Compute::new(&compute, http.clone(), TokenSource::new(credentials, http)),
        plain.then_some(UNENCRYPTED),
    ))
}
