//! Running as the OS's service. On Windows the service control manager (SCM) starts
//! `egs-service.exe` as the service `eryph-guest-services`: [`run_daemon`] reports to it
//! and turns its stop and shutdown into a stop request ([`stop_requested`]);
//! [`install`]/[`uninstall`] register and remove the service (automatic start, restart on
//! failure, LocalSystem). On Linux systemd starts the daemon as a plain process, so there
//! is nothing to do: the daemon always runs in the foreground and these say so.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

pub use imp::{install, run_daemon, stop_requested, uninstall};

/// The service's name, as the original registers it.
pub const SERVICE_NAME: &str = "eryph-guest-services";
/// The name Windows shows.
pub const DISPLAY_NAME: &str = "Eryph Guest Services";
/// What the service is, in the SCM's list.
pub const DESCRIPTION: &str =
    "Provisions this VM from cloud-config and serves SSH over the Hyper-V socket (egs-service)";

/// The daemon: called once, with whether it runs as the SCM's service (then on the
/// service's thread, with no console to write to).
pub type Daemon = Box<dyn FnOnce(bool) -> ExitCode + Send>;

#[cfg(windows)]
mod imp {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use windows_service::service::{
        ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
        ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    /// `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT`: not started by the SCM (a console).
    const NOT_UNDER_SCM: i32 = 1063;

    static DAEMON: Mutex<Option<Daemon>> = Mutex::new(None);
    static EXIT: Mutex<Option<ExitCode>> = Mutex::new(None);
    static STOP: AtomicBool = AtomicBool::new(false);
    static STOPPED: tokio::sync::Notify = tokio::sync::Notify::const_new();

    define_windows_service!(ffi_service_main, service_main);

    fn status(state: ServiceState, accept: ServiceControlAccept, exit: u32) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: ServiceExitCode::Win32(exit),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        }
    }

    fn service_main(_arguments: Vec<OsString>) {
        let handler = |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                STOP.store(true, Ordering::SeqCst);
                STOPPED.notify_waiters();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let Ok(handle) = service_control_handler::register(SERVICE_NAME, handler) else {
            return;
        };
        let accept = ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN;
        let _ = handle.set_service_status(status(ServiceState::Running, accept, 0));
        let daemon = DAEMON.lock().ok().and_then(|mut d| d.take());
        let code = daemon.map_or(ExitCode::FAILURE, |daemon| daemon(true));
        let failed = code != ExitCode::SUCCESS;
        if let Ok(mut exit) = EXIT.lock() {
            *exit = Some(code);
        }
        let stopped = status(
            ServiceState::Stopped,
            ServiceControlAccept::empty(),
            u32::from(failed),
        );
        let _ = handle.set_service_status(stopped);
    }

    /// Runs `daemon`: as the service when the SCM started this process, else (from a
    /// console) in the foreground. Returns its exit code.
    pub fn run_daemon(daemon: Daemon) -> std::io::Result<ExitCode> {
        if let Ok(mut slot) = DAEMON.lock() {
            *slot = Some(daemon);
        }
        match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
            Ok(()) => Ok(EXIT
                .lock()
                .ok()
                .and_then(|e| *e)
                .unwrap_or(ExitCode::FAILURE)),
            Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NOT_UNDER_SCM) => {
                let daemon = DAEMON.lock().ok().and_then(|mut d| d.take());
                Ok(daemon.map_or(ExitCode::FAILURE, |daemon| daemon(false)))
            }
            Err(e) => Err(std::io::Error::other(format!(
                "starting as the service {SERVICE_NAME}: {e}"
            ))),
        }
    }

    /// Resolves once the SCM asked the service to stop (stop, or the system shuts down).
    pub async fn stop_requested() {
        loop {
            let stopped = STOPPED.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if STOP.load(Ordering::SeqCst) {
                return;
            }
            stopped.await;
        }
    }

    /// `ERROR_SERVICE_DOES_NOT_EXIST`.
    const NOT_INSTALLED: i32 = 1060;

    fn scm_error(doing: &str, e: windows_service::Error) -> std::io::Error {
        match e {
            windows_service::Error::Winapi(w) => {
                let hint = if w.raw_os_error() == Some(5) {
                    " (run it from an elevated prompt: Administrator)"
                } else {
                    ""
                };
                std::io::Error::new(w.kind(), format!("{doing}: {w}{hint}"))
            }
            other => std::io::Error::other(format!("{doing}: {other}")),
        }
    }

    /// Registers the service: `executable` with `arguments`, automatic start, run as
    /// LocalSystem, restarted 5 s after a failure (three times a day). An installed service
    /// is updated to this (an upgrade or a change of options).
    pub fn install(executable: &Path, arguments: &[OsString]) -> std::io::Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .map_err(|e| scm_error("connecting to the service control manager", e))?;
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: executable.to_path_buf(),
            launch_arguments: arguments.to_vec(),
            dependencies: Vec::new(),
            account_name: None,
            account_password: None,
        };
        let access =
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS;
        let service = match manager.open_service(SERVICE_NAME, access) {
            Ok(installed) => {
                installed
                    .change_config(&info)
                    .map_err(|e| scm_error(&format!("updating the service {SERVICE_NAME}"), e))?;
                installed
            }
            Err(_) => manager
                .create_service(&info, access)
                .map_err(|e| scm_error(&format!("creating the service {SERVICE_NAME}"), e))?,
        };
        let _ = service.set_description(DESCRIPTION);
        let restart = ServiceAction {
            action_type: ServiceActionType::Restart,
            delay: Duration::from_secs(5),
        };
        let actions = ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart.clone(), restart.clone(), restart]),
        };
        service
            .update_failure_actions(actions)
            .map_err(|e| scm_error("setting the restart on failure", e))
    }

    /// Stops the service if it runs and removes it; false when it was not installed.
    pub fn uninstall() -> std::io::Result<bool> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| scm_error("connecting to the service control manager", e))?;
        let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
        let service = match manager.open_service(SERVICE_NAME, access) {
            Ok(service) => service,
            Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(NOT_INSTALLED) => {
                return Ok(false);
            }
            Err(e) => return Err(scm_error(&format!("opening the service {SERVICE_NAME}"), e)),
        };
        if service
            .query_status()
            .is_ok_and(|s| s.current_state != ServiceState::Stopped)
        {
            let _ = service.stop();
            for _ in 0..100 {
                if service
                    .query_status()
                    .is_ok_and(|s| s.current_state == ServiceState::Stopped)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        service
            .delete()
            .map_err(|e| scm_error(&format!("removing the service {SERVICE_NAME}"), e))?;
        Ok(true)
    }
}

#[cfg(not(windows))]
mod imp {
    use super::*;

    fn not_here() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the service control manager is Windows'; on Linux systemd runs the daemon \
             (eryph-guest-services.service)",
        )
    }

    /// Runs `daemon` in the foreground (systemd's service is a plain process).
    pub fn run_daemon(daemon: Daemon) -> std::io::Result<ExitCode> {
        Ok(daemon(false))
    }

    /// Never: systemd stops the daemon with SIGTERM.
    pub async fn stop_requested() {
        std::future::pending::<()>().await
    }

    /// Windows only.
    pub fn install(_executable: &Path, _arguments: &[OsString]) -> std::io::Result<()> {
        Err(not_here())
    }

    /// Windows only.
    pub fn uninstall() -> std::io::Result<bool> {
        Err(not_here())
    }
}
