//! `egs-service net-convert`: cloud-init's `devel net-convert`, for users checking what a
//! network-config will become and for tests. Files land under `--directory` at the paths a
//! Debian system reads them from.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use egs_netconfig::{convert, Fidelity, InputKind, MacNames, Renderer};

/// Arguments, spelled as cloud-init spells them.
#[derive(Debug, Args)]
pub struct NetConvertArgs {
    /// The network configuration to read.
    #[arg(short = 'p', long, value_name = "PATH")]
    network_data: PathBuf,
    /// Its format: `yaml` (network-config v1/v2) or `network_data.json` (OpenStack).
    #[arg(short = 'k', long, value_name = "KIND")]
    kind: InputKind,
    /// Directory to write the rendered files under (created if missing).
    #[arg(short = 'd', long, value_name = "DIR")]
    directory: PathBuf,
    /// Output format: `netplan`, `networkd` or `eni`.
    #[arg(short = 'O', long, value_name = "KIND")]
    output_kind: Renderer,
    /// An interface of the target system as `name,mac`; names links and `match.macaddress`
    /// entries as that system would (repeatable). Without it no system interface is known.
    #[arg(short = 'm', long = "mac", value_name = "NAME,MAC")]
    macs: Vec<String>,
    /// Also write what the system needs beyond cloud-init's files: networkd `.netdev`,
    /// `.link` and membership drop-ins, a root-only netplan file (what `run` applies).
    #[arg(long)]
    complete: bool,
    /// Accepted for compatibility with cloud-init; output follows Debian's paths.
    #[arg(short = 'D', long, value_name = "DISTRO")]
    distro: Option<String>,
}

/// Runs the conversion: exit 0 written, 1 the input is wrong, 2 bad arguments or I/O.
pub fn run(args: NetConvertArgs) -> ExitCode {
    let mut macs = MacNames::new();
    for pair in &args.macs {
        let Some((name, mac)) = pair.split_once(',') else {
            eprintln!("egs-service: --mac {pair}: expected NAME,MAC");
            return ExitCode::from(2);
        };
        macs.insert(mac, name);
    }
    let input = args.network_data.display().to_string();
    let bytes = match fs::read(&args.network_data) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("egs-service: {input}: {e}");
            return ExitCode::from(2);
        }
    };
    let fidelity = if args.complete {
        Fidelity::Complete
    } else {
        Fidelity::CloudInit
    };
    let conversion = match convert(&input, &bytes, args.kind, args.output_kind, fidelity, &macs) {
        Ok(Some(conversion)) => conversion,
        Ok(None) => {
            eprintln!("egs-service: {input}: empty network configuration, nothing written");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("egs-service: {e}");
            return ExitCode::from(1);
        }
    };
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    for file in &conversion.files {
        if let Err(e) = write(
            &args.directory,
            &file.path,
            file.contents.as_bytes(),
            file.mode,
        ) {
            eprintln!("egs-service: {e}");
            return ExitCode::from(2);
        }
    }
    eprintln!(
        "Read input format '{}' from '{input}'.\nWrote output format '{}' to '{}/'",
        args.kind.name(),
        args.output_kind,
        args.directory.display().to_string().trim_end_matches('/')
    );
    ExitCode::SUCCESS
}

/// Writes one output file. This is a preview in a directory of the user's choosing, as
/// cloud-init's net-convert writes it: no fsync (applying the configuration to a system
/// goes through `egs_netconfig::apply`, which writes atomically and durably).
fn write(directory: &Path, relative: &str, data: &[u8], mode: u32) -> Result<(), String> {
    let path = directory.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    egs_sys::fs::set_mode(&path, mode).map_err(|e| format!("{}: {e}", path.display()))
}
