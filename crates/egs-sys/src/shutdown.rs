//! Waiting for the request to stop: SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C) on Unix;
//! on Windows the service control manager's stop or shutdown ([`crate::service`]), or
//! Ctrl-C in a console.

pub use imp::StopRequest;

#[cfg(unix)]
mod imp {
    use tokio::signal::unix::{signal, Signal, SignalKind};

    /// The handlers for a stop request, installed when made.
    pub struct StopRequest(Signal);

    impl StopRequest {
        /// Installs the handlers now (inside a Tokio runtime), so a request that arrives
        /// before anyone waits is not lost.
        pub fn listen() -> std::io::Result<StopRequest> {
            Ok(StopRequest(signal(SignalKind::terminate())?))
        }

        /// Resolves when the process is asked to stop.
        pub async fn wait(&mut self) {
            tokio::select! {
                _ = self.0.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

#[cfg(windows)]
mod imp {
    /// The handler for a stop request.
    pub struct StopRequest(());

    impl StopRequest {
        /// Ready to wait for the SCM or Ctrl-C.
        pub fn listen() -> std::io::Result<StopRequest> {
            Ok(StopRequest(()))
        }

        /// Resolves when the process is asked to stop.
        pub async fn wait(&mut self) {
            tokio::select! {
                () = crate::service::stop_requested() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}
