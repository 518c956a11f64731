//! `egs-service serve`: the SSH server alone, on a Unix socket or loopback TCP (the VM
//! socket listener and the full daemon come with the rest of issue 6).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use egs_ssh::server::{config, serve_stream, Settings};

/// Where to listen.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A loopback TCP address.
    Tcp(std::net::SocketAddr),
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Parses `unix:PATH` or `tcp:127.0.0.1:PORT` (loopback only).
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if let Some(path) = s.strip_prefix("unix:") {
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = s.strip_prefix("tcp:") {
        let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("'{addr}': {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("'{addr}' is not a loopback address; EGS serves SSH on the VM socket, TCP only for development"));
        }
        return Ok(Listen::Tcp(addr));
    }
    Err(format!(
        "'{s}': use unix:PATH or tcp:127.0.0.1:PORT (vsock is not in this build yet)"
    ))
}

/// Runs the server until killed.
pub fn serve(listen: &str, config_dir: &Path, kvp_dir: Option<&Path>) -> ExitCode {
    let fail = |e: String| {
        eprintln!("egs-service serve: {e}");
        ExitCode::from(2)
    };
    let listen = match parse_listen(listen) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let host_key = match egs_ssh::host_key::load_or_create(&config_dir.join("private/egs_host_key"))
    {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let settings = Arc::new(Settings {
        authorized_keys: config_dir.join("id_egs.pub"),
        kvp_dir: kvp_dir.map(Path::to_path_buf),
        host_key,
    });
    let server_config = Arc::new(config(&settings));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let result: Result<(), String> = runtime.block_on(async move {
        let listener = match listen {
            Listen::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let l = tokio::net::UnixListener::bind(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                println!("listening on unix:{}", path.display());
                Listener::Unix(l)
            }
            Listen::Tcp(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?;
                println!(
                    "listening on tcp:{}",
                    l.local_addr().map_err(|e| e.to_string())?
                );
                Listener::Tcp(l)
            }
        };
        loop {
            match &listener {
                Listener::Unix(l) => {
                    let (stream, _) = l.accept().await.map_err(|e| e.to_string())?;
                    tokio::spawn(serve_stream(
                        settings.clone(),
                        server_config.clone(),
                        stream,
                    ));
                }
                Listener::Tcp(l) => {
                    let (stream, _) = l.accept().await.map_err(|e| e.to_string())?;
                    tokio::spawn(serve_stream(
                        settings.clone(),
                        server_config.clone(),
                        stream,
                    ));
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
