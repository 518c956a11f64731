//! The SSH server on arbitrary client bytes before authentication (identification line,
//! packet framing, key exchange, auth requests): it must end the connection or answer,
//! never panic or hang.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use egs_ssh::server::{config, serve_connection, Limits, Settings};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

fn settings() -> &'static (Arc<Settings>, Arc<russh::server::Config>, tokio::runtime::Runtime) {
    static SETUP: OnceLock<(Arc<Settings>, Arc<russh::server::Config>, tokio::runtime::Runtime)> =
        OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("egs-fuzz-{}", std::process::id()));
        let host_key = egs_ssh::host_key::load_or_create(&dir.join("private/key")).unwrap();
        let settings = Arc::new(Settings {
            authorized_keys: dir.join("id_egs.pub"),
            kvp_dir: None,
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
        let serving = tokio::spawn(serve_connection(settings.clone(), config.clone(), server, None));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the connection ends once the client has gone")
            .unwrap();
    });
});
