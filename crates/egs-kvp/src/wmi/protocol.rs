//! What a Hyper-V host says to WMI about a VM's KVP, as text and numbers, without WMI: the
//! WQL queries, the `Msvm_KvpExchangeDataItem` embedded instances (WMI DTD 2.0 text) written
//! for `AddKvpItems`/`ModifyKvpItems`/`RemoveKvpItems` and read from the exchange
//! components, the split of a write into those three calls, and what their return values
//! and jobs mean (`original-remote-access.md` §3.5). The COM calls that carry these stay
//! thin; everything here is tested on every OS.

use crate::store::{Change, Listing};

/// The WMI namespace of Hyper-V.
pub const NAMESPACE: &str = r"root\virtualization\v2";

/// Which of a VM's pools a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPool {
    /// What the guest reports (`GuestExchangeItems`).
    Guest,
    /// What the integration services report (`GuestIntrinsicExchangeItems`).
    GuestIntrinsic,
    /// What the host set for the guest (`HostExchangeItems`).
    External,
    /// What the host keeps for itself (`HostOnlyItems`).
    HostOnly,
}

impl HostPool {
    /// The `Source` of data items written to this pool (`None`: the host cannot write it).
    pub fn source(self) -> Option<u16> {
        match self {
            HostPool::External => Some(0),
            HostPool::HostOnly => Some(4),
            HostPool::Guest | HostPool::GuestIntrinsic => None,
        }
    }

    /// The property holding the pool's items in [`query`]'s result.
    pub fn property(self) -> &'static str {
        match self {
            HostPool::Guest => "GuestExchangeItems",
            HostPool::GuestIntrinsic => "GuestIntrinsicExchangeItems",
            HostPool::External => "HostExchangeItems",
            HostPool::HostOnly => "HostOnlyItems",
        }
    }
}

/// The WQL query for `pool` of the VM `vm_id` (a GUID, which keeps quotes out of it).
pub fn query(pool: HostPool, vm_id: &str) -> String {
    let vm = vm_id.to_uppercase();
    let property = pool.property();
    match pool {
        HostPool::Guest | HostPool::GuestIntrinsic => format!(
            "SELECT SystemName,{property} FROM Msvm_KvpExchangeComponent WHERE SystemName = '{vm}'"
        ),
        HostPool::External | HostPool::HostOnly => format!(
            "SELECT InstanceID,{property} FROM Msvm_KvpExchangeComponentSettingData \
             WHERE InstanceID LIKE 'Microsoft:{vm}\\\\%'"
        ),
    }
}

/// The query for the VM itself (`TargetSystem` of the write calls).
pub fn vm_query(vm_id: &str) -> String {
    format!(
        "SELECT * FROM Msvm_ComputerSystem WHERE Name = '{}'",
        vm_id.to_uppercase()
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A `Msvm_KvpExchangeDataItem` as WMI DTD 2.0 text, as `GetText(WmiDtd20)` writes it.
pub fn data_item(name: &str, data: &str, source: u16) -> String {
    format!(
        "<INSTANCE CLASSNAME=\"Msvm_KvpExchangeDataItem\">\
         <PROPERTY NAME=\"Data\" TYPE=\"string\"><VALUE>{}</VALUE></PROPERTY>\
         <PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>{}</VALUE></PROPERTY>\
         <PROPERTY NAME=\"Source\" TYPE=\"uint16\"><VALUE>{source}</VALUE></PROPERTY>\
         </INSTANCE>",
        escape(data),
        escape(name)
    )
}

/// The (name, data) of an exchange item: `Name` must be there, a missing `Data` is "".
pub fn read_item(text: &str) -> Result<(String, String), String> {
    let document =
        roxmltree::Document::parse(text).map_err(|e| format!("not a WMI instance: {e}"))?;
    let instance = document.root_element();
    if instance.tag_name().name() != "INSTANCE" {
        return Err(format!(
            "not a WMI instance: <{}> instead of <INSTANCE>",
            instance.tag_name().name()
        ));
    }
    let value = |property: &str| {
        instance
            .children()
            .filter(|n| n.has_tag_name("PROPERTY") && n.attribute("NAME") == Some(property))
            .flat_map(|p| p.children().filter(|n| n.has_tag_name("VALUE")))
            .map(|v| v.text().unwrap_or("").to_string())
            .next()
    };
    let name = value("Name").ok_or("a KVP item without a Name")?;
    Ok((name, value("Data").unwrap_or_default()))
}

/// One write split as the original splits it: items to add (keys not there), to modify
/// (keys there) and to remove; always all three calls, in this order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// `AddKvpItems`.
    pub add: Vec<(String, String)>,
    /// `ModifyKvpItems`.
    pub modify: Vec<(String, String)>,
    /// `RemoveKvpItems` (their data is written as "").
    pub remove: Vec<String>,
}

/// Splits `changes` against what the pool holds; deleting a key that is not there is
/// nothing.
pub fn split(current: &Listing, changes: &[Change]) -> Calls {
    let mut calls = Calls::default();
    for change in changes {
        match change {
            Change::Set { key, value } if current.get(key).is_some() => {
                calls.modify.push((key.clone(), value.clone()))
            }
            Change::Set { key, value } => calls.add.push((key.clone(), value.clone())),
            Change::Delete(key) if current.get(key).is_some() => calls.remove.push(key.clone()),
            Change::Delete(_) => {}
        }
    }
    calls
}

/// What a method's `ReturnValue` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// Done.
    Done,
    /// A job was started: poll it (`Job` is its path).
    Job,
    /// Failed, with the reason.
    Failed(String),
}

/// The meaning of a `ReturnValue` of the virtual system management service.
pub fn returned(value: u32) -> Returned {
    let reason = match value {
        0 => return Returned::Done,
        4096 => return Returned::Job,
        32768 => "Failed",
        32769 => "Access Denied",
        32770 => "Not Supported",
        32771 => "Status is unknown",
        32772 => "Timeout",
        32773 => "Invalid parameter",
        32774 => "System is in use",
        32775 => "Invalid state for this operation",
        32776 => "Incorrect data type",
        32777 => "System is not available",
        32778 => "Out of memory",
        _ => "unknown return value",
    };
    Returned::Failed(format!("{reason} ({value})"))
}

/// A job's state as polled (`Msvm_ConcreteJob.JobState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// New, starting, running, suspended or shutting down: poll again (every 1 s, for at
    /// most a minute).
    Running,
    /// Completed.
    Completed,
    /// Ended otherwise, with the job's `ErrorCode`.
    Failed(u32),
}

/// The meaning of `JobState` (with the job's `ErrorCode` for a failure).
pub fn job_state(state: u16, error_code: u32) -> JobState {
    match state {
        2..=6 => JobState::Running,
        7 => JobState::Completed,
        _ => JobState::Failed(error_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    const VM: &str = "5c5b4a4e-1d2c-4b6a-9f00-abcdefabcdef";

    #[test]
    fn queries_name_the_pool_and_the_upper_case_vm() {
        assert_eq!(
            query(HostPool::Guest, VM),
            "SELECT SystemName,GuestExchangeItems FROM Msvm_KvpExchangeComponent WHERE SystemName = '5C5B4A4E-1D2C-4B6A-9F00-ABCDEFABCDEF'"
        );
        assert_eq!(
            query(HostPool::External, VM),
            r"SELECT InstanceID,HostExchangeItems FROM Msvm_KvpExchangeComponentSettingData WHERE InstanceID LIKE 'Microsoft:5C5B4A4E-1D2C-4B6A-9F00-ABCDEFABCDEF\\%'"
        );
        assert!(query(HostPool::GuestIntrinsic, VM).contains("GuestIntrinsicExchangeItems"));
        assert!(query(HostPool::HostOnly, VM).contains("HostOnlyItems"));
        assert_eq!(
            vm_query(VM),
            "SELECT * FROM Msvm_ComputerSystem WHERE Name = '5C5B4A4E-1D2C-4B6A-9F00-ABCDEFABCDEF'"
        );
        assert_eq!(HostPool::External.source(), Some(0));
        assert_eq!(HostPool::HostOnly.source(), Some(4));
        assert_eq!(HostPool::Guest.source(), None);
    }

    #[test]
    fn data_items_are_escaped_and_read_back() {
        let key = "eryph:guest-services:client-public-key:host";
        let value = r#"expiry-time="20301231" ssh-ed25519 AAAA <me & you> 'x'"#;
        let text = data_item(key, value, 0);
        assert!(text.starts_with(r#"<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem">"#));
        assert!(text.contains("&quot;20301231&quot;") && text.contains("&lt;me &amp; you&gt;"));
        assert!(text.contains(r#"<PROPERTY NAME="Source" TYPE="uint16"><VALUE>0</VALUE>"#));
        assert_eq!(read_item(&text), Ok((key.to_string(), value.to_string())));
    }

    #[test]
    fn exchange_items_as_hyper_v_reports_them() {
        // The shape GetText(WmiDtd20) gives for a guest item: every property, some empty.
        let item = r#"<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Caption" PROPAGATED="true" TYPE="string"></PROPERTY><PROPERTY NAME="Data" TYPE="string"><VALUE>available</VALUE></PROPERTY><PROPERTY NAME="Description" PROPAGATED="true" TYPE="string"></PROPERTY><PROPERTY NAME="ElementName" PROPAGATED="true" TYPE="string"></PROPERTY><PROPERTY NAME="Name" TYPE="string"><VALUE>eryph:guest-services:status</VALUE></PROPERTY><PROPERTY NAME="Source" TYPE="uint16"><VALUE>1</VALUE></PROPERTY></INSTANCE>"#;
        assert_eq!(
            read_item(item),
            Ok(("eryph:guest-services:status".into(), "available".into()))
        );
        let no_data = r#"<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Name" TYPE="string"><VALUE>k</VALUE></PROPERTY></INSTANCE>"#;
        assert_eq!(read_item(no_data), Ok(("k".into(), String::new())));
        let no_name = r#"<INSTANCE CLASSNAME="Msvm_KvpExchangeDataItem"><PROPERTY NAME="Data" TYPE="string"><VALUE>v</VALUE></PROPERTY></INSTANCE>"#;
        assert_eq!(read_item(no_name), Err("a KVP item without a Name".into()));
        assert!(read_item("<CLASS NAME=\"x\"/>")
            .unwrap_err()
            .contains("<CLASS>"));
        assert!(read_item("<INSTANCE")
            .unwrap_err()
            .starts_with("not a WMI instance"));
    }

    #[test]
    fn writes_split_into_add_modify_and_remove() {
        let current = Listing {
            records: vec![
                Record {
                    index: 0,
                    key: "shell".into(),
                    value: "pwsh".into(),
                },
                Record {
                    index: 1,
                    key: "old".into(),
                    value: "x".into(),
                },
            ],
            problems: Vec::new(),
        };
        let changes = [
            Change::Set {
                key: "shell".into(),
                value: "cmd.exe".into(),
            },
            Change::Set {
                key: "key:1".into(),
                value: "ssh-ed25519 AAAA".into(),
            },
            Change::Delete("old".into()),
            Change::Delete("never-there".into()),
        ];
        assert_eq!(
            split(&current, &changes),
            Calls {
                add: vec![("key:1".into(), "ssh-ed25519 AAAA".into())],
                modify: vec![("shell".into(), "cmd.exe".into())],
                remove: vec!["old".into()],
            }
        );
    }

    #[test]
    fn return_values_and_job_states() {
        assert_eq!(returned(0), Returned::Done);
        assert_eq!(returned(4096), Returned::Job);
        assert_eq!(
            returned(32769),
            Returned::Failed("Access Denied (32769)".into())
        );
        assert_eq!(
            returned(32778),
            Returned::Failed("Out of memory (32778)".into())
        );
        assert_eq!(
            returned(1),
            Returned::Failed("unknown return value (1)".into())
        );
        assert_eq!(job_state(4, 0), JobState::Running);
        assert_eq!(job_state(7, 0), JobState::Completed);
        assert_eq!(job_state(10, 32770), JobState::Failed(32770));
    }
}
