//! Port forwarding, served only when `PortForwardingEnabled`: `direct-tcpip` channels
//! (`ssh -L`: the guest connects out) and `tcpip-forward` (`ssh -R`: the guest listens on
//! loopback, as OpenSSH does with `GatewayPorts no`, and opens `forwarded-tcpip` channels
//! back to the client).

use std::collections::HashMap;

use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::task::AbortHandle;

/// Connects to `host:port` and carries the channel's bytes both ways.
pub async fn direct(channel: Channel<Msg>, host: String, port: u32, reply: ChannelOpenHandle) {
    let Ok(port) = u16::try_from(port) else {
        reply.reject(ChannelOpenFailure::ConnectFailed).await;
        return;
    };
    match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(mut tcp) => {
            reply.accept().await;
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
        }
        Err(_) => reply.reject(ChannelOpenFailure::ConnectFailed).await,
    }
}

/// The remote forwards (`ssh -R`) of one connection.
#[derive(Default)]
pub struct RemoteForwards {
    listeners: HashMap<(String, u32), AbortHandle>,
}

impl RemoteForwards {
    /// Listens on loopback `port` (0: any free port, written back) and forwards each
    /// connection to the client. False if the port cannot be bound.
    pub async fn add(&mut self, handle: Handle, address: &str, port: &mut u32) -> bool {
        let Ok(want) = u16::try_from(*port) else {
            return false;
        };
        let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", want)).await else {
            return false;
        };
        let Ok(local) = listener.local_addr() else {
            return false;
        };
        *port = local.port().into();
        let (address, bound) = (address.to_string(), *port);
        let task = tokio::spawn({
            let address = address.clone();
            async move {
                while let Ok((mut tcp, peer)) = listener.accept().await {
                    let (handle, address) = (handle.clone(), address.clone());
                    tokio::spawn(async move {
                        let opened = handle
                            .channel_open_forwarded_tcpip(
                                address,
                                bound,
                                peer.ip().to_string(),
                                peer.port().into(),
                            )
                            .await;
                        if let Ok(channel) = opened {
                            let mut stream = channel.into_stream();
                            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                        }
                    });
                }
            }
        });
        self.listeners.insert((address, bound), task.abort_handle());
        true
    }

    /// Stops a remote forward; false if there was none.
    pub fn cancel(&mut self, address: &str, port: u32) -> bool {
        self.listeners
            .remove(&(address.to_string(), port))
            .map(|t| t.abort())
            .is_some()
    }
}

impl Drop for RemoteForwards {
    fn drop(&mut self) {
        for task in self.listeners.values() {
            task.abort();
        }
    }
}
