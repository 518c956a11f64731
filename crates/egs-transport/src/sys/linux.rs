//! AF_VSOCK through tokio-vsock.

use crate::BoxStream;

/// A vsock listener.
pub struct VmListener(tokio_vsock::VsockListener);

impl VmListener {
    /// Binds `cid:port` (`cid` is usually `VMADDR_CID_ANY`).
    pub fn bind(cid: u32, port: u32) -> std::io::Result<Self> {
        tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(cid, port)).map(VmListener)
    }

    /// `vsock:<cid>:<port>` of the bound socket.
    pub fn local(&self) -> String {
        match self.0.local_addr() {
            Ok(a) => format!("vsock:{}:{}", a.cid(), a.port()),
            Err(_) => "vsock:?".into(),
        }
    }

    /// The next connection and its peer.
    pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((
            Box::new(stream),
            format!("vsock:{}:{}", peer.cid(), peer.port()),
        ))
    }
}

/// Connects to a guest's vsock port (Linux KVM/QEMU hosts).
pub async fn connect_vm(cid: u32, port: u32) -> std::io::Result<BoxStream> {
    let stream = tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(cid, port)).await?;
    Ok(Box::new(stream))
}
