//! `egs-service`: the EGS guest agent. This binary only parses arguments and wires the
//! library crates together.

mod daemon;
mod kvp;
mod logging;
mod netconvert;
mod provision;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use egs_sys::service::SERVICE_NAME;

/// Eryph guest services: cloud-init-compatible provisioning and SSH over the VM socket.
#[derive(Debug, Parser)]
#[command(name = "egs-service", version, about)]
struct Cli {
    /// What to log on standard error (the journal under systemd) [default: info for the
    /// daemon, warn for commands].
    #[arg(long, global = true, value_name = "LEVEL", value_enum)]
    log_level: Option<logging::Level>,
    /// Use the Hyper-V KVP pool files (`.kvp_pool_N`) in this directory [default: the
    /// OS's own KVP: /var/lib/hyperv on Linux, the registry on Windows].
    #[arg(long, global = true, value_name = "DIR")]
    kvp_dir: Option<PathBuf>,
    #[command(flatten)]
    place: provision::Where,
    /// Daemon options (without a command).
    #[command(flatten)]
    daemon: daemon::DaemonArgs,
    /// Without a command, `egs-service` runs as the daemon: SSH on the VM socket, status in
    /// KVP, and the provisioning stages not yet done (as its systemd unit does).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check user-data (and vendor-data) as the provisioning agent would read it, without
    /// applying anything. Exit status: 0 valid, 1 rejected, 2 unreadable or bad arguments.
    Validate {
        /// The user-data file (cloud-config, script, MIME multipart, gzip, #include …).
        #[arg(long, value_name = "PATH")]
        user_data: PathBuf,
        /// Vendor-data, merged under user-data as cloud-init does.
        #[arg(long, value_name = "PATH")]
        vendor_data: Option<PathBuf>,
        /// Warn about keys the target guest does not support.
        #[arg(long, value_enum, default_value_t = TargetArg::All)]
        target: TargetArg,
        /// Print one JSON object instead of text for people.
        #[arg(long)]
        json: bool,
    },
    /// Provision this system (or a sandbox root) from its datasource, in stages.
    Run {
        #[command(flatten)]
        args: provision::RunArgs,
    },
    /// Show how provisioning went (exit 1 on errors, like `cloud-init status`).
    Status(provision::StatusArgs),
    /// Forget provisioning state so the next run provisions again.
    Reset {
        /// Also remove the logs.
        #[arg(long)]
        logs: bool,
        /// Also remove the scripts/per-boot, per-instance and per-once directories.
        #[arg(long)]
        scripts: bool,
        /// Also forget once-only modules and scripts.
        #[arg(long)]
        reset_once: bool,
        /// Keep per-boot records.
        #[arg(long)]
        keep_per_boot: bool,
    },
    /// Write state and logs to a zip file for a bug report (no user-data, no scripts).
    CollectLogs {
        /// The zip file to write.
        output: PathBuf,
    },
    /// Render a network configuration to netplan, systemd-networkd or ENI files, as
    /// cloud-init's `devel net-convert` does. Exit status: 0 written, 1 bad input, 2 bad
    /// arguments or unwritable directory.
    NetConvert(netconvert::NetConvertArgs),
    /// Read and write Hyper-V KVP pools; show the provisioning event stream.
    #[command(subcommand)]
    Kvp(kvp::KvpCommand),
    /// Register the Windows service `eryph-guest-services` (automatic start, restarted on
    /// failure, runs as LocalSystem) to run this executable with the daemon options given
    /// after `--` (for example `-- --no-provisioning`). Needs an elevated prompt.
    InstallService {
        /// Daemon options the service starts with.
        #[arg(last = true, value_name = "OPTION")]
        options: Vec<std::ffi::OsString>,
    },
    /// Stop and remove the Windows service `eryph-guest-services`.
    UninstallService,
    /// Print the version.
    Version,
}

impl Command {
    /// Commands that only read and print (no children, no sockets), which a closed pipe
    /// (`| head`) may end quietly.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Validate { .. }
                | Command::Status(_)
                | Command::NetConvert(_)
                | Command::Kvp(_)
                | Command::Version
        )
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    Linux,
    Windows,
    All,
}

/// What `install-service`/`uninstall-service` print and exit with.
fn service_outcome(result: std::io::Result<String>) -> ExitCode {
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("egs-service: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let place = cli.place;
    let kvp = egs_kvp::store::guest_store(cli.kvp_dir.as_deref());
    let default_level = match cli.command {
        None => logging::Level::Info,
        Some(_) => logging::Level::Warn,
    };
    let level = cli.log_level.unwrap_or(default_level);
    let Some(command) = cli.command else {
        // The daemon: as the Windows service when the SCM started it, else in the
        // foreground (under systemd, a console, a test).
        let args = cli.daemon;
        let daemon = move |as_service: bool| {
            match as_service {
                true => logging::init_service(level, &args.config_dir.join("logs")),
                false => logging::init(level),
            }
            daemon::run(args, &place, kvp)
        };
        return egs_sys::service::run_daemon(Box::new(daemon)).unwrap_or_else(|e| {
            eprintln!("egs-service: {e}");
            ExitCode::from(2)
        });
    };
    logging::init(level);
    if command.only_prints() {
        egs_sys::process::end_quietly_on_closed_pipe();
    }
    match command {
        Command::Validate {
            user_data,
            vendor_data,
            target,
            json,
        } => {
            let target = match target {
                TargetArg::Linux => egs_cloudconfig::schema::Target::Linux,
                TargetArg::Windows => egs_cloudconfig::schema::Target::Windows,
                TargetArg::All => egs_cloudconfig::schema::Target::All,
            };
            validate::run(&user_data, vendor_data.as_deref(), target, json)
        }
        Command::Kvp(command) => kvp::run(kvp.as_ref(), command),
        Command::NetConvert(args) => netconvert::run(args),
        Command::Run { args } => provision::run_command(args, &place, kvp),
        Command::Status(args) => provision::status_command(&place, args),
        Command::Reset {
            logs,
            scripts,
            reset_once,
            keep_per_boot,
        } => provision::reset_command(
            &place,
            egs_provision::maintenance::ResetOptions {
                logs,
                scripts,
                reset_once,
                keep_per_boot,
            },
        ),
        Command::CollectLogs { output } => provision::collect_logs_command(&place, &output),
        Command::InstallService { options } => {
            let installed = std::env::current_exe()
                .and_then(|exe| egs_sys::service::install(&exe, &options))
                .and_then(|()| egs_sys::eventlog::register_source(egs_sys::eventlog::SOURCE));
            service_outcome(installed.map(|()| format!("installed the service {SERVICE_NAME}")))
        }
        Command::UninstallService => {
            let removed = egs_sys::service::uninstall();
            let _ = egs_sys::eventlog::unregister_source(egs_sys::eventlog::SOURCE);
            service_outcome(removed.map(|removed| match removed {
                true => format!("removed the service {SERVICE_NAME}"),
                false => format!("the service {SERVICE_NAME} is not installed: nothing to remove"),
            }))
        }
        Command::Version => {
            println!("egs-service {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
