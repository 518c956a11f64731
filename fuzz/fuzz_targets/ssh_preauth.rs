//! The SSH server on arbitrary client bytes before authentication: the first input byte
//! chooses whether a valid identification line comes first (then the rest is packet
//! framing and key exchange) or the bytes are the identification itself. The server must
//! end the connection or answer, never panic or hang.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use egs_ssh::server::{config, serve_connection, Limits, Settings};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

fn settings() -> &'static (
    Arc<Settings>,
    Arc<russh::server::Config>,
    tokio::runtime::Runtime,
) {
    static SETUP: OnceLock<(
        Arc<Settings>,
        Arc<russh::server::Config>,
        tokio::runtime::Runtime,
    )> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("egs-fuzz-{}", std::process::id()));
        let host_key = egs_ssh::host_key::load_or_create(&dir.join("private/key")).unwrap();
        let settings = Arc::new(Settings {
            authorized_keys: dir.join("id_egs.pub"),
            kvp: None,
            kvp_auth: false,
            port_forwarding: false,
            host_keys: vec![host_key],
            limits: Limits {
                login_grace: Duration::from_secs(2),
                ..Limits::default()
            },
        });
        let config = Arc::new(config(&settings));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (settings, config, runtime)
    })
}

fuzz_target!(|data: &[u8]| {
    let (settings, config, runtime) = settings();
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(serve_connection(
            settings.clone(),
            config.clone(),
            server,
            None,
        ));
        if let Some((&first, rest)) = data.split_first() {
            if first & 1 == 1 {
                let _ = client.write_all(b"SSH-2.0-OpenSSH_9.2p1 fuzz\r\n").await;
            }
            let _ = client.write_all(rest).await;
        }
        let _ = client.shutdown().await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the connection ends once the client has gone")
            .unwrap();
    });
});
