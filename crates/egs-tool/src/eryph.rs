//! `egs-tool catlet …` wiring: the selectors, the connection (`egs_eryph`) with its
//! warning, and where `add-key` takes its key from.

use std::io::Read;
use std::path::Path;

use egs_eryph::compute::Compute;

/// `--configuration` and `--client-id` of every `catlet` command.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Selectors {
    /// The eryph configuration (`default` unless given; `zero`, `local` or any name).
    #[arg(long, value_name = "NAME")]
    pub configuration: Option<String>,
    /// The client to act as (else the configuration's default client).
    #[arg(long, value_name = "CLIENTID")]
    pub client_id: Option<String>,
}

/// The compute API for these selectors (a warning printed for `http://` endpoints).
pub fn connect(selectors: &Selectors) -> Result<Compute, String> {
    let (compute, warning) = egs_eryph::connect(
        selectors.configuration.as_deref(),
        selectors.client_id.as_deref(),
    )?;
    if let Some(warning) = warning {
        eprintln!("egs-tool: warning: {warning}");
    }
    Ok(compute)
}

/// The key `add-key` pushes: `-` reads stdin, a path reads the file, nothing takes this
/// tool's own key (creating it if needed).
pub fn public_key(source: Option<&Path>) -> Result<String, String> {
    let unreadable =
        "Could not read a public key. Provide --public-key or run 'initialize' for a managed key.";
    let text = match source {
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|_| unreadable.to_string())?;
            text
        }
        Some(p) => std::fs::read_to_string(p).map_err(|_| unreadable.to_string())?,
        None => crate::remote::get_ssh_key().map_err(|_| unreadable.to_string())?,
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(unreadable.into());
    }
    Ok(text)
}
