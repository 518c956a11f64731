//! A VM's KVP as its Hyper-V host sees it: WMI `root\virtualization\v2`
//! (`Msvm_KvpExchangeComponent` to read the Guest and intrinsic pools,
//! `Msvm_VirtualSystemManagementService.AddKvpItems`/`ModifyKvpItems`/`RemoveKvpItems` to
//! write the External pool; `original-remote-access.md` §3.5). What is said to WMI — the
//! queries, the embedded instances, the split of a write, return values and jobs — is in
//! [`protocol`], tested without WMI; the COM calls that carry it are not built yet, so
//! every operation says so and nothing pretends.

pub mod protocol;

use crate::store::{KvpError, KvpStore, Listing, Plan, PoolId};

const NOT_BUILT: &str = "reading and writing a VM's KVP through Hyper-V WMI on its host";

/// The KVP pools of one VM, through WMI on its Hyper-V host.
#[derive(Debug, Clone)]
pub struct HostWmi {
    vm_id: String,
}

impl HostWmi {
    /// The VM with this id (a GUID).
    pub fn new(vm_id: impl Into<String>) -> HostWmi {
        HostWmi {
            vm_id: vm_id.into(),
        }
    }
}

impl KvpStore for HostWmi {
    fn location(&self, pool: PoolId) -> String {
        format!("VM {} ({pool}, Hyper-V WMI)", self.vm_id)
    }

    fn list(&self, _pool: PoolId) -> Result<Listing, KvpError> {
        Err(KvpError::NotBuilt(NOT_BUILT))
    }

    fn edit(&self, _pool: PoolId, _plan: &mut Plan<'_>) -> Result<(), KvpError> {
        Err(KvpError::NotBuilt(NOT_BUILT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_says_it_is_not_built() {
        let store = HostWmi::new("5c5b4a4e-0000-0000-0000-000000000001");
        for e in [
            store.list(PoolId::Guest).unwrap_err(),
            store.set(PoolId::External, "k", "v").unwrap_err(),
            store.get(PoolId::Guest, "k").unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                "reading and writing a VM's KVP through Hyper-V WMI on its host is not built yet"
            );
        }
    }
}
