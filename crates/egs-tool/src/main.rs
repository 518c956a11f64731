//! `egs-tool`: the EGS host tool. This binary only parses arguments and wires the library
//! crates together. Today: handing a VM its provisioning documents through Hyper-V KVP.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use egs_kvp::documents;
use egs_kvp::pool::{Pool, POOL_EXTERNAL};

/// Eryph guest services, host side.
#[derive(Debug, Parser)]
#[command(name = "egs-tool", version, about)]
struct Cli {
    /// Write the KVP pool file in this directory (`.kvp_pool_0`) instead of the VM's KVP
    /// exchange (for development and tests, or a guest's own /var/lib/hyperv).
    #[arg(long, global = true, value_name = "DIR")]
    kvp_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hand a VM its cloud-config through KVP (no ISO needed): user-data, meta-data,
    /// vendor-data and network-config, chunked and hashed as the guest's KVP datasource
    /// expects. Replaces documents sent before.
    SetUserData {
        /// The VM (its id or name on a Hyper-V host).
        target: String,
        /// The user-data file (cloud-config, script, MIME, gzip …).
        #[arg(long, value_name = "PATH")]
        user_data: PathBuf,
        /// A NoCloud-style meta-data file (must hold `instance-id`).
        #[arg(long, value_name = "PATH", conflicts_with_all = ["instance_id", "hostname"])]
        meta_data: Option<PathBuf>,
        /// The instance id, when no --meta-data is given.
        #[arg(long, value_name = "ID", required_unless_present = "meta_data")]
        instance_id: Option<String>,
        /// The host name, when no --meta-data is given.
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
        /// Vendor-data.
        #[arg(long, value_name = "PATH")]
        vendor_data: Option<PathBuf>,
        /// Network configuration (v1 or v2).
        #[arg(long, value_name = "PATH")]
        network_config: Option<PathBuf>,
    },
    /// Remove the provisioning documents from a VM's KVP.
    ClearUserData {
        /// The VM.
        target: String,
    },
}

fn pool_for(kvp_dir: Option<&Path>, target: &str) -> Result<Pool, String> {
    match kvp_dir {
        Some(dir) => Ok(Pool::open(dir, POOL_EXTERNAL)),
        None => Err(format!(
            "{target}: writing a VM's KVP goes through WMI on its Hyper-V host, which this build does not include yet; use --kvp-dir DIR to write a pool file"
        )),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::SetUserData {
            target,
            user_data,
            meta_data,
            instance_id,
            hostname,
            vendor_data,
            network_config,
        } => {
            let meta = match (meta_data, instance_id) {
                (Some(path), _) => read(&path)?,
                (None, Some(id)) => {
                    let mut m = format!("instance-id: {id}\n");
                    if let Some(h) = hostname {
                        m.push_str(&format!("local-hostname: {h}\n"));
                    }
                    m.into_bytes()
                }
                (None, None) => unreachable!("clap requires --instance-id without --meta-data"),
            };
            let mut docs: Vec<(&str, Vec<u8>)> =
                vec![("meta-data", meta), ("user-data", read(&user_data)?)];
            if let Some(p) = vendor_data {
                docs.push(("vendor-data", read(&p)?));
            }
            if let Some(p) = network_config {
                docs.push(("network-config", read(&p)?));
            }
            let pool = pool_for(cli.kvp_dir.as_deref(), &target)?;
            let refs: Vec<(&str, &[u8])> = docs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
            documents::write(&pool, &refs, true).map_err(|e| format!("{target}: {e}"))?;
            let summary: Vec<String> = docs
                .iter()
                .map(|(n, b)| {
                    format!(
                        "{n} ({} bytes, {} chunks)",
                        b.len(),
                        b.len().div_ceil(documents::CHUNK_BYTES)
                    )
                })
                .collect();
            Ok(format!("{target}: wrote {}", summary.join(", ")))
        }
        Command::ClearUserData { target } => {
            let pool = pool_for(cli.kvp_dir.as_deref(), &target)?;
            let removed = documents::clear(&pool).map_err(|e| format!("{target}: {e}"))?;
            Ok(format!("{target}: removed {removed} key(s)"))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("egs-tool: {e}");
            ExitCode::from(2)
        }
    }
}
