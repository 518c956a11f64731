//! The SSH channel's data plane (`original-remote-access.md` §5.4, contract §6.6): a
//! WebSocket to `…/ssh-channel/connect?token=…` with the bearer token in a header, no
//! subprotocol, and the guest's SSH bytes in binary frames, offered to the caller as one
//! byte stream (`ssh`'s ProxyCommand and the in-process SSH client read the same stream).
//!
//! TLS is rustls with the operating system's verifier (Windows' certificate store, the
//! system's CA bundle elsewhere). The channel token rides in the URL and the access token in
//! a header; neither is ever put into a message.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::compute::SshChannel;

/// Largest payload sent in one frame (the original sends up to 16 KiB per read; larger
/// frames cost the relay fewer headers and wake-ups).
const FRAME: usize = 64 * 1024;
/// How long the guest has to greet (the SSH server speaks first).
const GREETING: Duration = Duration::from_secs(30);

/// Anything the handshake may run over: plain TCP or TLS.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Transport for T {}

fn failed(reason: impl std::fmt::Display) -> String {
    format!("Failed to open the SSH channel connection: {reason}")
}

/// Connects the channel and returns the guest's byte stream. Eryph accepts the WebSocket
/// before its agent checks the one-time token, so "connected, then closed before the guest
/// said anything" is reported as a refused or expired token.
pub async fn open(channel: &SshChannel) -> Result<DuplexStream, String> {
    let mut request = channel.url.as_str().into_client_request().map_err(failed)?;
    let bearer = format!("Bearer {}", channel.bearer)
        .parse()
        .map_err(|_| failed("the access token is not a valid header value"))?;
    request.headers_mut().insert("Authorization", bearer);
    let uri = request.uri().clone();
    let tls = uri.scheme_str() == Some("wss");
    let host = uri
        .host()
        .ok_or_else(|| failed("the compute endpoint has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| failed(format!("{host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let transport: Box<dyn Transport> = if tls {
        use rustls_platform_verifier::ConfigVerifierExt;
        let config = tokio_rustls::rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| failed(format!("TLS: {e}")))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| failed(format!("{host}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS with {host}: {e}")))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (socket, _) = tokio_tungstenite::client_async(request, transport)
        .await
        .map_err(|e| match e {
            WsError::Http(response) => {
                let body = response.body().clone().unwrap_or_default();
                crate::compute::failure(
                    "Failed to open the SSH channel connection",
                    response.status().as_u16(),
                    &body,
                )
            }
            other => failed(other),
        })?;
    let (mut sink, mut source) = socket.split();
    let refused = || {
        failed(
            "eryph closed the connection at once: the channel token was refused, used or expired.",
        )
    };
    let first = loop {
        match tokio::time::timeout(GREETING, source.next()).await {
            Err(_) => return Err(failed("the guest did not answer within 30 seconds.")),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Err(refused()),
            Ok(Some(Ok(Message::Binary(bytes)))) => break bytes.to_vec(),
            Ok(Some(Ok(Message::Text(text)))) => break text.as_bytes().to_vec(),
            Ok(Some(Ok(_))) => continue,
        }
    };
    let (ours, theirs) = tokio::io::duplex(4 * FRAME);
    let (mut from_user, mut to_user) = tokio::io::split(ours);
    tokio::spawn(async move {
        // User → guest: each read one binary message; at the user's end a normal close,
        // then the guest's remaining bytes are still delivered until its close.
        let up = async {
            let mut buffer = vec![0u8; FRAME];
            loop {
                match from_user.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let frame = Message::Binary(buffer[..n].to_vec().into());
                        if sink.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
            std::future::pending::<()>().await
        };
        // Guest → user until a close, an error or a dropped connection (all end the
        // stream: SSH notices a cut-off as a protocol error, never as a clean end).
        let down = async {
            if to_user.write_all(&first).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = source.next().await {
                let written = match message {
                    Message::Binary(bytes) => to_user.write_all(&bytes).await,
                    Message::Text(text) => to_user.write_all(text.as_bytes()).await,
                    Message::Close(_) => break,
                    _ => Ok(()),
                };
                if written.is_err() {
                    return;
                }
            }
            let _ = to_user.shutdown().await;
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
    Ok(theirs)
}
