//! Systems without a VM socket implementation yet.

use crate::BoxStream;

fn unsupported() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the VM socket is not implemented on this OS yet; use unix: or tcp:",
    )
}

/// No VM socket here.
pub struct VmListener;

impl VmListener {
    /// Always an error on this OS.
    pub fn bind(_cid: u32, _port: u32) -> std::io::Result<Self> {
        Err(unsupported())
    }

    /// Never reached.
    pub fn local(&self) -> String {
        "vm:unsupported".into()
    }

    /// Never reached.
    pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
        Err(unsupported())
    }
}

/// Always an error on this OS.
pub async fn connect_vm(_cid: u32, _port: u32) -> std::io::Result<BoxStream> {
    Err(unsupported())
}
