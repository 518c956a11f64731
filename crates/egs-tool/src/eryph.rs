//! `egs-tool catlet …` wiring: the selectors, the connection (`egs_eryph`) with its
//! warning, the keys (`--identity` or the per-user managed key, and where `add-key` takes
//! its key from), the ssh stanza of a catlet, and the guest reached through eryph's SSH
//! channel for `proxy` and the transfers.

use std::io::Read;
use std::path::{Path, PathBuf};

use egs_eryph::compute::Compute;
use egs_ssh::client::{ClientError, Guest, PrivateKey};

use crate::remote::{self, Failure};

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

/// How a command that logs in to the catlet authenticates, and through which eryph.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Access {
    /// The private key to log in with (default: this user's managed key, see
    /// `catlet get-client-key`).
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub selectors: Selectors,
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

/// A catlet id that can name a file and stand in a ProxyCommand.
fn check_catlet_id(catlet: &str) -> Result<(), Failure> {
    if egs_eryph::config::is_safe_token(catlet) && !catlet.starts_with(['-', '.']) {
        return Ok(());
    }
    Err(Failure {
        code: 2,
        message: "The catlet id may only contain letters, digits, '.', '-' and '_'.".into(),
    })
}

/// The key `add-key` pushes: `-` reads stdin, a path reads the file, nothing takes this
/// user's managed key (creating it if needed).
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
        None => get_client_key().map_err(|_| unreadable.to_string())?,
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(unreadable.into());
    }
    Ok(text)
}

/// `catlet get-client-key`: the per-user managed key's public half (created if needed).
pub fn get_client_key() -> Result<String, Failure> {
    remote::user_key()?;
    remote::public_half(&remote::user_key_path())
}

/// The key a login uses: `--identity`, else the managed key.
fn login_key(identity: Option<&Path>) -> Result<PrivateKey, Failure> {
    Ok(match identity {
        Some(path) => egs_ssh::host_key::load_identity(path)?,
        None => remote::user_key()?,
    })
}

/// The catlet's guest, logged in as `egs` over eryph's SSH channel.
pub async fn guest(catlet: String, access: Access) -> Result<Guest, Failure> {
    check_catlet_id(&catlet)?;
    let key = login_key(access.identity.as_deref())?;
    let id = catlet.clone();
    let channel =
        tokio::task::spawn_blocking(move || connect(&access.selectors)?.open_ssh_channel(&id))
            .await
            .map_err(|e| e.to_string())??;
    let stream = egs_eryph::channel::open(&channel)
        .await
        .map_err(ClientError::Unreachable)?;
    Ok(
        egs_ssh::client::connect_stream(Box::new(stream), &format!("catlet {catlet}"), &key)
            .await?,
    )
}

/// `catlet proxy <id>`: stdin/stdout ↔ eryph's SSH channel (ssh's ProxyCommand).
pub fn proxy(catlet: &str, selectors: &Selectors) -> Result<(), Failure> {
    check_catlet_id(catlet)?;
    remote::forget_host_key(&format!("{catlet}.eryph.alt"));
    let channel = connect(selectors)?.open_ssh_channel(catlet)?;
    remote::runtime()?.block_on(async {
        let stream = egs_eryph::channel::open(&channel).await?;
        remote::relay_stdio(Box::new(stream)).await;
        Ok::<(), Failure>(())
    })?;
    // stdin may still be blocked in a reader thread: leave without waiting for it.
    std::process::exit(0)
}

/// `catlet add-ssh-config <id> [--identity PATH] [--add-key]`: the catlet's stanza in
/// `catlet.d/` (names of §5.6, ProxyCommand `egs-tool catlet proxy <id>` with the
/// selectors), the include block, and with `--add-key` the public key pushed to eryph.
pub fn add_ssh_config(catlet: &str, add_key: bool, access: &Access) -> Result<String, Failure> {
    check_catlet_id(catlet)?;
    let identity = match &access.identity {
        Some(path) => std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            remote::user_key()?;
            remote::user_key_path()
        }
    };
    let public = if add_key {
        let mut pub_path = identity.clone().into_os_string();
        pub_path.push(".pub");
        let text = std::fs::read_to_string(&pub_path).map_err(|_| {
            format!(
                "Cannot push the key: the public key '{}' was not found next to the identity file.",
                Path::new(&pub_path).display()
            )
        })?;
        Some(text.trim().to_string())
    } else {
        None
    };
    let compute = connect(&access.selectors)?;
    let found = compute.catlet(catlet)?;
    let names = egs_eryph::host_names(catlet, found.name.as_deref(), found.project.as_deref());
    let hosts: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut proxy_args = vec!["catlet", "proxy", catlet];
    if let Some(configuration) = &access.selectors.configuration {
        proxy_args.extend(["--configuration", configuration]);
    }
    if let Some(client) = &access.selectors.client_id {
        proxy_args.extend(["--client-id", client]);
    }
    let file = remote::write_stanza("catlet.d", &names[0], &hosts, &identity, &proxy_args)?;
    remote::ensure_include_block()?;
    let mut lines = vec![format!("Wrote {}", file.display())];
    if let Some(public) = public {
        lines.push(compute.add_key(catlet, &public, None)?);
    }
    lines.extend(names.iter().rev().map(|name| format!("  ssh {name}")));
    Ok(lines.join("\n"))
}
