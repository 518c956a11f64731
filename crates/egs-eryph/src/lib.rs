//! eryph's client contract (`eryph-client-contract.md`), as `egs-tool catlet …` needs it:
//! `config` finds the client, its key and the endpoints in the config stores; `token`
//! gets access tokens with an RS256 client assertion; `compute` speaks the compute API
//! (routes, operations, the control-plane commands); `duration` reads `--ttl`; `http` is
//! the one HTTP client; `channel` carries the SSH channel's bytes over eryph's WebSocket.
//! No OS calls but file reads and sockets.

pub mod channel;
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
    let credentials = config::find(
        &config::store_dirs(),
        &config::common_data_dir(),
        configuration,
        client_id,
    )?;
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

/// The `Host` names of a catlet's ssh stanza (`original-remote-access.md` §5.6):
/// `<id>.eryph.alt` always; `<name>.<project>.eryph.alt` when both are safe tokens; and
/// `<name>.eryph.alt` as well when the project is exactly `default`.
pub fn host_names(id: &str, name: Option<&str>, project: Option<&str>) -> Vec<String> {
    let mut names = vec![format!("{id}.eryph.alt")];
    if let (Some(name), Some(project)) = (name, project) {
        if config::is_safe_token(name) && config::is_safe_token(project) {
            names.push(format!("{name}.{project}.eryph.alt"));
            if project == "default" {
                names.push(format!("{name}.eryph.alt"));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn catlet_host_names() {
        let names = |n, p| super::host_names("c0ffee", n, p);
        assert_eq!(
            names(Some("web"), Some("default")),
            ["c0ffee.eryph.alt", "web.default.eryph.alt", "web.eryph.alt"]
        );
        assert_eq!(
            names(Some("web"), Some("shop")),
            ["c0ffee.eryph.alt", "web.shop.eryph.alt"]
        );
        assert_eq!(names(Some("web"), Some("Default")).len(), 2, "ordinal");
        for bad in ["my web", "web#1", "w*", ""] {
            assert_eq!(
                names(Some(bad), Some("default")),
                ["c0ffee.eryph.alt"],
                "{bad}"
            );
        }
        assert_eq!(names(None, Some("default")), ["c0ffee.eryph.alt"]);
    }
}
