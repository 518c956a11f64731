//! `egs-service` without a command: the daemon. It serves SSH on the VM socket (unless
//! `RemoteAccessEnabled` is off), publishes its status in the KVP Guest pool
//! (`eryph:guest-services:status=available`, `version`, `operating-system`, `features`),
//! tells systemd it is ready (`Type=notify`), runs the provisioning stages not yet done
//! (unless `ProvisioningEnabled` is off), and on SIGTERM/SIGINT withdraws `status` and
//! `features` and exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use egs_kvp::store::{Change, KvpError, KvpStore, PoolId};
use egs_ssh::control::ServiceControl;
use egs_ssh::server::{Limits, Settings};

use crate::provision;

use egs_ssh::server::{
    KVP_FEATURES as KEY_FEATURES, KVP_OS as KEY_OS, KVP_STATUS as KEY_STATUS,
    KVP_VERSION as KEY_VERSION,
};

/// Options of the daemon.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Where SSH listens: `vsock` (port 5002; the default on Linux), `vsock:PORT`, `hv`
    /// (the Hyper-V socket, service 0000138a-facb-11e6-bd58-64006a7986d3; the default on
    /// Windows), `hv:VMID[:SERVICEID]`, `unix:PATH` or `tcp:127.0.0.1:PORT` (development
    /// and tests).
    #[arg(long, value_name = "ADDRESS", default_value = if egs_sys::WINDOWS { "hv" } else { "vsock" })]
    listen: String,
    /// Allow `--listen tcp:` on a non-loopback address.
    #[arg(long)]
    allow_remote_tcp: bool,
    /// Configuration directory (`service-control.conf`, `id_egs.pub`,
    /// `private/egs_host_key`) [default: /etc/opt/eryph/guest-services on Linux,
    /// %ProgramData%\eryph\guest-services on Windows].
    #[arg(long, value_name = "DIR", default_value_os_t = egs_ssh::control::default_config_dir(), hide_default_value = true)]
    pub(crate) config_dir: PathBuf,
    /// Leave provisioning to its own boot units (`egs-provision-local.service`,
    /// `egs-provision.service`, which wait for the network); the daemon serves SSH and
    /// status only. Without it the daemon runs the stages not yet done in the background.
    #[arg(long)]
    no_provisioning: bool,
    /// Seconds a connection may take to authenticate (tests shorten it).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, hide = true)]
    login_grace: u64,
}

/// The daemon's own events (the SSH audit trail is `egs_ssh::server::AUDIT`).
const DAEMON: &str = "egs::daemon";

/// Writes (`available`) or withdraws (`None`) the status keys in one edit of the Guest
/// pool. A missing pool (no hv_kvp_daemon: not on Hyper-V, or not started yet) is not an
/// error for the service; returns whether the pool was there.
fn publish_status(kvp: &dyn KvpStore, available: Option<&str>, os: &str) -> bool {
    let mut changes = vec![
        Change::set(KEY_VERSION, env!("CARGO_PKG_VERSION")),
        Change::set(KEY_OS, os),
    ];
    match available {
        Some(features) => changes.extend([
            Change::set(KEY_STATUS, "available"),
            Change::set(KEY_FEATURES, features),
        ]),
        None => changes.extend([
            Change::Delete(KEY_STATUS.into()),
            Change::Delete(KEY_FEATURES.into()),
        ]),
    }
    match kvp.edit(PoolId::Guest, &mut |_| Ok(changes.clone())) {
        Ok(()) => true,
        Err(KvpError::MissingPool(_)) => false,
        Err(e) => {
            tracing::warn!(target: DAEMON, "could not publish the status in KVP: {e}");
            true
        }
    }
}

/// Publishes the status once the KVP pool exists: the daemon starts early in boot,
/// possibly before hv_kvp_daemon has created its pools.
async fn publish_when_pool_appears(kvp: Arc<dyn KvpStore>, features: &'static str, os: String) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if publish_status(kvp.as_ref(), Some(features), &os) {
            return;
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: DaemonArgs, place: &provision::Where, kvp: Arc<dyn KvpStore>) -> ExitCode {
    let fail = |e: String| {
        tracing::error!(target: DAEMON, "{e}");
        let _ = writeln!(std::io::stderr(), "egs-service: {e}");
        ExitCode::from(2)
    };
    // Before any thread starts: sessions inherit where provisioning acts, and nothing the
    // daemon starts inherits systemd's notify socket.
    place.export();
    let notifier = egs_sys::notify::Notifier::take_from_env();
    let control = ServiceControl::load(&args.config_dir);
    let endpoint = match egs_transport::parse_listen(&args.listen, args.allow_remote_tcp) {
        Ok(e) => e,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let os = egs_sys::host::operating_system(&place.root());
    let result: Result<(), String> = runtime.block_on(async {
        let mut stop_request =
            egs_sys::shutdown::StopRequest::listen().map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = if control.remote_access {
            let host_keys = egs_ssh::host_key::host_keys(&args.config_dir.join("private"))
                .map_err(|e| e.to_string())?;
            let settings = Arc::new(Settings {
                authorized_keys: args.config_dir.join("id_egs.pub"),
                kvp: Some(kvp.clone()),
                kvp_auth: control.kvp_auth,
                port_forwarding: control.port_forwarding,
                host_keys,
                limits: Limits {
                    login_grace: std::time::Duration::from_secs(args.login_grace),
                    ..Limits::default()
                },
            });
            let listener = egs_transport::Listener::bind(&endpoint)
                .await
                .map_err(|e| format!("{endpoint}: {e}"))?;
            // For whoever started it (tests, scripts); a service has no standard output, and
            // println! would panic there.
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "listening on {}", listener.local()).and_then(|()| stdout.flush());
            tracing::info!(target: DAEMON, "listening on {}", listener.local());
            let mut stop = stop_rx.clone();
            let task = tokio::spawn(egs_ssh::server::serve(listener, settings, async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
            let features = if control.port_forwarding {
                "shell-override port-forwarding"
            } else {
                "shell-override"
            };
            if !publish_status(kvp.as_ref(), Some(features), &os) {
                tokio::spawn(publish_when_pool_appears(kvp.clone(), features, os.clone()));
            }
            Some(task)
        } else {
            tracing::info!(target: DAEMON, "remote access is disabled (RemoteAccessEnabled=0)");
            None
        };
        let _ = notifier.notify("READY=1");
        // Where cloud-init provisions, its status is mirrored until it is final (not gated
        // by any flag, as the original's watcher).
        let system = egs_provision::system::for_layout(place.layout());
        if egs_provision::bridge::cloud_init_enabled(system.as_ref()) {
            let kvp = kvp.clone();
            std::thread::spawn(move || {
                egs_provision::bridge::watch(system.as_ref(), Some(kvp.as_ref()))
            });
        }
        if args.no_provisioning {
            tracing::info!(target: DAEMON, "provisioning is left to its boot units (--no-provisioning)");
        } else if control.provisioning {
            let (place, kvp) = (place.clone(), kvp.clone());
            tokio::task::spawn_blocking(move || {
                let code = provision::run_command(provision::RunArgs::default(), &place, kvp);
                tracing::info!(target: DAEMON, "provisioning finished ({code:?})");
            });
        }
        stop_request.wait().await;
        tracing::info!(target: DAEMON, "stopping");
        let _ = notifier.notify("STOPPING=1");
        let _ = stop_tx.send(true);
        if let Some(task) = server {
            let _ = task.await;
            publish_status(kvp.as_ref(), None, &os);
        }
        Ok(())
    });
    // A provisioning run still going is not waited for: its state is written after every
    // module, and the next start continues where it stopped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => {
            tracing::info!(target: DAEMON, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
