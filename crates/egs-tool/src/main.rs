//! `egs-tool`: the EGS host tool. This binary parses arguments and wires the library crates
//! together: the machine key and ssh config (`egs_ssh::ssh_config`), the proxy and
//! transfers (`egs_transport`, `egs_ssh::client`), and KVP documents and keys (`egs_kvp`).

mod documents;
mod eryph;
mod kvp;
mod registration;
mod remote;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use remote::{Failure, Transfer};

/// Eryph guest services, host side.
#[derive(Debug, Parser)]
#[command(name = "egs-tool", version, about)]
struct Cli {
    /// Use the KVP pool files in this directory (`.kvp_pool_N`) instead of the VM's KVP
    /// exchange (for development and tests, or a guest's own /var/lib/hyperv).
    #[arg(long, global = true, value_name = "DIR")]
    kvp_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Targets: `vsock:CID[:PORT]` (KVM/QEMU), `fc:SOCKET[:PORT]` (Firecracker /
/// cloud-hypervisor hybrid vsock), `unix:PATH`, `tcp:127.0.0.1:PORT`; a Hyper-V VM id on
/// Windows hosts.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create this machine's SSH key pair (Ed25519) if there is none; on a Windows
    /// Hyper-V host also register the guest service with Hyper-V (elevated).
    Initialize,
    /// Remove the guest service's Hyper-V registration (Windows Hyper-V hosts, elevated);
    /// keys stay.
    Unregister,
    /// Print this machine's public key (authorize it in the guest's id_egs.pub).
    GetSshKey,
    /// Write an ssh config entry so that `ssh <alias>` (and `ssh <name>.vsock.alt` …)
    /// reaches the guest through `egs-tool proxy`.
    AddSshConfig {
        /// The guest.
        target: String,
        /// An extra host name for it (letters, digits, '.', '-', '_').
        alias: Option<String>,
    },
    /// Carry stdin/stdout to the guest's SSH socket (ssh's ProxyCommand).
    Proxy {
        /// The guest.
        target: String,
    },
    /// Upload a file (to a temporary name, renamed into place when complete).
    UploadFile {
        /// The guest.
        target: String,
        /// Local file.
        source: PathBuf,
        /// Path in the guest.
        target_path: String,
        /// Replace an existing file.
        #[arg(long)]
        overwrite: bool,
    },
    /// Upload a directory: files, empty directories and symbolic links.
    UploadDirectory {
        /// The guest.
        target: String,
        /// Local directory.
        source: PathBuf,
        /// Directory in the guest.
        target_path: String,
        /// Replace existing files (else they are kept, with a warning).
        #[arg(long)]
        overwrite: bool,
        /// Include subdirectories.
        #[arg(long)]
        recursive: bool,
    },
    /// Download a file (to a temporary name, renamed into place when complete).
    DownloadFile {
        /// The guest.
        target: String,
        /// Path in the guest.
        source: String,
        /// Local file.
        target_path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        overwrite: bool,
    },
    /// Download a directory: files, empty directories and symbolic links.
    DownloadDirectory {
        /// The guest.
        target: String,
        /// Directory in the guest.
        source: String,
        /// Local directory.
        target_path: PathBuf,
        /// Replace existing files (else they are kept, with a warning).
        #[arg(long)]
        overwrite: bool,
        /// Include subdirectories.
        #[arg(long)]
        recursive: bool,
    },
    /// Show whether the guest service is available, its version and provisioning status:
    /// for a Hyper-V VM (and with --kvp-dir) from its KVP, as the original; for other
    /// targets by asking the service over SSH.
    GetStatus {
        /// The guest.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set the shell of new sessions through KVP (needs the guest's `shell-override`).
    SetShell {
        /// The guest.
        target: String,
        /// The shell (an absolute path).
        #[arg(short, long)]
        command: Option<String>,
        /// Its arguments.
        #[arg(short, long, allow_hyphen_values = true)]
        arguments: Option<String>,
        /// Remove the override.
        #[arg(long)]
        reset: bool,
    },
    /// Print the VM's KVP data.
    GetData {
        /// The guest.
        target: String,
        /// As one JSON object (`guest`, `guest_intrinsic`, `external`, `host_only`).
        #[arg(long)]
        json: bool,
    },
    /// Hand a VM its cloud-config through KVP (no ISO needed): user-data, meta-data,
    /// vendor-data and network-config, chunked and hashed as the guest's KVP datasource
    /// expects. Replaces documents sent before.
    SetUserData {
        #[command(flatten)]
        args: documents::UserDataArgs,
    },
    /// Remove the provisioning documents from a VM's KVP.
    ClearUserData {
        /// The VM.
        target: String,
    },
    /// Catlets through an eryph connection (no Hyper-V host access needed).
    #[command(subcommand)]
    Catlet(CatletCommand),
}

/// The arguments of a catlet transfer.
#[derive(Debug, clap::Args)]
struct CatletTransfer {
    /// The catlet id.
    catlet: String,
    /// Where the bytes come from (a local path for uploads, a guest path for downloads).
    source: String,
    /// Where they go.
    target_path: String,
    /// Replace existing files (else they are kept, with a warning for directories).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    access: eryph::Access,
}

/// `egs-tool catlet …`.
#[derive(Debug, Subcommand)]
enum CatletCommand {
    /// Write an ssh config entry so that `ssh <name>.<project>.eryph.alt` (and
    /// `ssh <id>.eryph.alt`) reaches the catlet through eryph.
    AddSshConfig {
        /// The catlet id.
        catlet: String,
        /// Also let the key log in (pushed to eryph without expiry).
        #[arg(long)]
        add_key: bool,
        #[command(flatten)]
        access: eryph::Access,
    },
    /// Print this user's managed public key (created if there is none).
    GetClientKey,
    /// Carry stdin/stdout over eryph's SSH channel to the catlet (ssh's ProxyCommand).
    #[command(hide = true)]
    Proxy {
        /// The catlet id.
        catlet: String,
        #[command(flatten)]
        selectors: eryph::Selectors,
    },
    /// Upload a file (to a temporary name, renamed into place when complete).
    UploadFile(CatletTransfer),
    /// Upload a directory: files, empty directories and symbolic links.
    UploadDirectory {
        #[command(flatten)]
        transfer: CatletTransfer,
        /// Include subdirectories.
        #[arg(long)]
        recursive: bool,
    },
    /// Download a file (to a temporary name, renamed into place when complete).
    DownloadFile(CatletTransfer),
    /// Download a directory: files, empty directories and symbolic links.
    DownloadDirectory {
        #[command(flatten)]
        transfer: CatletTransfer,
        /// Include subdirectories.
        #[arg(long)]
        recursive: bool,
    },
    /// Show the catlet's guest services status, version, provisioning state and shell.
    GetStatus {
        /// The catlet id.
        catlet: String,
        #[command(flatten)]
        selectors: eryph::Selectors,
    },
    /// Set the shell of new sessions; an empty shell removes the override.
    SetShell {
        /// The catlet id.
        catlet: String,
        /// The shell ("" to remove the override).
        shell: String,
        /// Its arguments.
        #[arg(long, allow_hyphen_values = true)]
        args: Option<String>,
        #[command(flatten)]
        selectors: eryph::Selectors,
    },
    /// Let a public key log in to the catlet (in this client's own key slot).
    AddKey {
        /// The catlet id.
        catlet: String,
        /// The key: a file, or - for stdin (default: this tool's key).
        #[arg(long, value_name = "PATH|-")]
        public_key: Option<PathBuf>,
        /// How long it is valid: 8h, 30m, 1d12h … (default: no expiry).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        #[command(flatten)]
        selectors: eryph::Selectors,
    },
    /// Remove this client's key from the catlet.
    RemoveKey {
        /// The catlet id.
        catlet: String,
        #[command(flatten)]
        selectors: eryph::Selectors,
    },
}

/// A catlet transfer through eryph's SSH channel.
fn catlet_transfer(kind: Transfer, t: CatletTransfer, recursive: bool) -> Result<String, Failure> {
    remote::transfer(
        kind,
        eryph::guest(t.catlet, t.access),
        &t.source,
        &t.target_path,
        t.overwrite,
        recursive,
    )
}

/// Runs a `catlet` command; eryph's errors exit with 1.
fn catlet(command: CatletCommand) -> Result<String, Failure> {
    Ok(match command {
        CatletCommand::AddSshConfig {
            catlet,
            add_key,
            access,
        } => eryph::add_ssh_config(&catlet, add_key, &access)?,
        CatletCommand::GetClientKey => {
            let key = eryph::get_client_key()?;
            let _ = write!(std::io::stdout(), "{key}");
            String::new()
        }
        CatletCommand::Proxy { catlet, selectors } => {
            eryph::proxy(&catlet, &selectors)?;
            String::new()
        }
        CatletCommand::UploadFile(t) => catlet_transfer(Transfer::UploadFile, t, false)?,
        CatletCommand::UploadDirectory {
            transfer,
            recursive,
        } => catlet_transfer(Transfer::UploadDirectory, transfer, recursive)?,
        CatletCommand::DownloadFile(t) => catlet_transfer(Transfer::DownloadFile, t, false)?,
        CatletCommand::DownloadDirectory {
            transfer,
            recursive,
        } => catlet_transfer(Transfer::DownloadDirectory, transfer, recursive)?,
        CatletCommand::GetStatus { catlet, selectors } => {
            eryph::connect(&selectors)?.get_status(&catlet)?
        }
        CatletCommand::SetShell {
            catlet,
            shell,
            args,
            selectors,
        } => eryph::connect(&selectors)?.set_shell(&catlet, &shell, args.as_deref())?,
        CatletCommand::AddKey {
            catlet,
            public_key,
            ttl,
            selectors,
        } => {
            let key = eryph::public_key(public_key.as_deref())?;
            eryph::connect(&selectors)?.add_key(&catlet, &key, ttl.as_deref())?
        }
        CatletCommand::RemoveKey { catlet, selectors } => {
            eryph::connect(&selectors)?.remove_key(&catlet)?
        }
    })
}

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

fn run(cli: Cli) -> Result<String, Failure> {
    let kvp_dir = cli.kvp_dir.as_deref();
    match cli.command {
        Command::Initialize => remote::initialize(),
        Command::Unregister => registration::unregister(),
        Command::GetSshKey => remote::get_ssh_key().map(|key| {
            let _ = write!(std::io::stdout(), "{key}");
            String::new()
        }),
        Command::AddSshConfig { target, alias } => {
            remote::add_ssh_config(&target, alias.as_deref(), kvp_dir)
        }
        Command::Proxy { target } => remote::proxy(&target).map(|()| String::new()),
        Command::UploadFile {
            target,
            source,
            target_path,
            overwrite,
        } => remote::transfer(
            Transfer::UploadFile,
            remote::vm_guest(&target),
            &source.to_string_lossy(),
            &target_path,
            overwrite,
            false,
        ),
        Command::UploadDirectory {
            target,
            source,
            target_path,
            overwrite,
            recursive,
        } => remote::transfer(
            Transfer::UploadDirectory,
            remote::vm_guest(&target),
            &source.to_string_lossy(),
            &target_path,
            overwrite,
            recursive,
        ),
        Command::DownloadFile {
            target,
            source,
            target_path,
            overwrite,
        } => remote::transfer(
            Transfer::DownloadFile,
            remote::vm_guest(&target),
            &source,
            &target_path.to_string_lossy(),
            overwrite,
            false,
        ),
        Command::DownloadDirectory {
            target,
            source,
            target_path,
            overwrite,
            recursive,
        } => remote::transfer(
            Transfer::DownloadDirectory,
            remote::vm_guest(&target),
            &source,
            &target_path.to_string_lossy(),
            overwrite,
            recursive,
        ),
        Command::GetStatus { target, json } if kvp::uses_kvp(kvp_dir, &target) => {
            kvp::get_status(kvp_dir, &target, json).map_err(usage)
        }
        Command::GetStatus { target, json } => remote::get_status(&target, json),
        Command::SetShell {
            target,
            command,
            arguments,
            reset,
        } => kvp::set_shell(
            kvp_dir,
            &target,
            command.as_deref(),
            arguments.as_deref(),
            reset,
        )
        .map_err(usage),
        Command::GetData { target, json } => kvp::get_data(kvp_dir, &target, json).map_err(usage),
        Command::SetUserData { args } => documents::set_user_data(kvp_dir, args).map_err(usage),
        Command::ClearUserData { target } => {
            documents::clear_user_data(kvp_dir, &target).map_err(usage)
        }
        Command::Catlet(command) => catlet(command),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(message) => {
            // A reader that went away (`| head`) is not an error worth a panic.
            if !message.is_empty() {
                let _ = writeln!(std::io::stdout(), "{message}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("egs-tool: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
