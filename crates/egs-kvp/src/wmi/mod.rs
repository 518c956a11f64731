//! A VM's KVP as its Hyper-V host sees it: WMI `root\virtualization\v2`
//! (`Msvm_KvpExchangeComponent` to read the Guest and intrinsic pools,
//! `Msvm_VirtualSystemManagementService.AddKvpItems`/`ModifyKvpItems`/`RemoveKvpItems` to
//! write the External pool; `original-remote-access.md` §3.5). What is said to WMI — the
//! queries, the embedded instances, the split of a write, return values and jobs — is in
//! [`protocol`]; the conversation (which object, which call, polling a job) is here, over an
//! `egs_sys::wmi::Connection`: the real namespace on Windows, recorded answers in tests.

pub mod protocol;

use std::io;
use std::time::{Duration, Instant};

use egs_sys::wmi::{Connection, Namespace, Value};

use crate::record::Record;
use crate::store::{Change, KvpError, KvpStore, Listing, Plan, PoolId};
use protocol::{HostPool, JobState, Returned};

/// How [`HostWmi`] opens its connection.
pub type Connector = Box<dyn Fn() -> io::Result<Box<dyn Connection>> + Send + Sync>;

/// The class whose methods write a VM's KVP.
const SERVICE_CLASS: &str = "Msvm_VirtualSystemManagementService";

/// How often and how long a KVP job is polled (the original: every second, one minute).
const JOB_POLL: Duration = Duration::from_secs(1);
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// The KVP pools of one VM, through WMI on its Hyper-V host.
pub struct HostWmi {
    vm_id: String,
    connect: Connector,
    poll: Duration,
}

impl std::fmt::Debug for HostWmi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWmi")
            .field("vm_id", &self.vm_id)
            .finish()
    }
}

fn connect_hyper_v() -> io::Result<Box<dyn Connection>> {
    if !egs_sys::wmi::AVAILABLE {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a VM's KVP is read through Hyper-V's WMI, on its Windows host (elsewhere use --kvp-dir DIR with pool files)",
        ));
    }
    match Namespace::connect(protocol::NAMESPACE) {
        Ok(namespace) => Ok(Box::new(namespace)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(with_hint(e)),
        Err(e) => Err(e),
    }
}

/// A WMI error with what to do about it, where that is clear.
fn with_hint(e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => "is Hyper-V installed on this machine?",
        io::ErrorKind::PermissionDenied => {
            "run it elevated (as an administrator) or as a member of Hyper-V Administrators"
        }
        _ => return e,
    };
    io::Error::new(e.kind(), format!("{e}; {hint}"))
}

impl HostWmi {
    /// The VM with this id (a GUID), through this machine's Hyper-V.
    pub fn new(vm_id: impl Into<String>) -> HostWmi {
        HostWmi::with_connector(vm_id, Box::new(connect_hyper_v))
    }

    /// The VM with this id through connections `connect` opens (tests replay recorded
    /// answers).
    pub fn with_connector(vm_id: impl Into<String>, connect: Connector) -> HostWmi {
        HostWmi {
            vm_id: vm_id.into(),
            connect,
            poll: JOB_POLL,
        }
    }

    fn io(&self, pool: &str, source: io::Error) -> KvpError {
        KvpError::Io {
            location: format!("VM {} ({pool}, Hyper-V WMI)", self.vm_id),
            source: if source.kind() == io::ErrorKind::PermissionDenied {
                with_hint(source)
            } else {
                source
            },
        }
    }

    fn failed(&self, pool: &str, message: String) -> KvpError {
        self.io(pool, io::Error::other(message))
    }

    /// The items of `pool` as Hyper-V reports them; a VM that is off (no exchange
    /// component, or no items) has none, as in the original.
    pub fn list_host(&self, pool: HostPool) -> Result<Listing, KvpError> {
        let name = pool.property();
        let wmi = (self.connect)().map_err(|e| self.io(name, e))?;
        let rows = wmi
            .query(&protocol::query(pool, &self.vm_id), &[name])
            .map_err(|e| self.io(name, e))?;
        let mut listing = Listing::default();
        for row in rows {
            let items = row[0]
                .texts()
                .ok_or_else(|| self.failed(name, format!("{name} is not an array of strings")))?;
            for (index, item) in items.iter().enumerate() {
                match protocol::read_item(item) {
                    Ok((key, value)) => listing.records.push(Record {
                        index: listing.records.len() + listing.problems.len(),
                        key,
                        value,
                    }),
                    Err(e) => listing.problems.push(format!("{name}[{index}]: {e}")),
                }
            }
        }
        Ok(listing)
    }

    fn path_of(&self, wmi: &dyn Connection, wql: &str) -> io::Result<Option<String>> {
        Ok(wmi
            .query(wql, &["__PATH"])?
            .into_iter()
            .next()
            .and_then(|row| row[0].text().map(str::to_string)))
    }

    /// Adds, modifies and removes the items of `calls` in `pool` (External or HostOnly).
    fn write(&self, pool: HostPool, calls: protocol::Calls) -> Result<(), KvpError> {
        let name = pool.property();
        let source = pool
            .source()
            .ok_or_else(|| self.failed(name, format!("a host cannot write {name}")))?;
        if calls == protocol::Calls::default() {
            return Ok(());
        }
        let wmi = (self.connect)().map_err(|e| self.io(name, e))?;
        let service = self
            .path_of(wmi.as_ref(), &format!("SELECT __PATH FROM {SERVICE_CLASS}"))
            .map_err(|e| self.io(name, e))?
            .ok_or_else(|| {
                self.failed(name, format!("no {SERVICE_CLASS} (is Hyper-V running?)"))
            })?;
        let vm = self
            .path_of(wmi.as_ref(), &protocol::vm_query(&self.vm_id))
            .map_err(|e| self.io(name, e))?
            .ok_or_else(|| {
                self.failed(
                    name,
                    format!(
                        "The virtual machine with ID '{}' does not exist.",
                        self.vm_id
                    ),
                )
            })?;
        let removals: Vec<(String, String)> = calls
            .remove
            .into_iter()
            .map(|key| (key, String::new()))
            .collect();
        for (method, items) in [
            ("AddKvpItems", calls.add),
            ("ModifyKvpItems", calls.modify),
            ("RemoveKvpItems", removals),
        ] {
            if items.is_empty() {
                continue;
            }
            let items = items
                .iter()
                .map(|(key, data)| protocol::data_item(key, data, source))
                .collect();
            let out = wmi
                .call(
                    &service,
                    SERVICE_CLASS,
                    method,
                    &[
                        ("TargetSystem", Value::Text(vm.clone())),
                        ("DataItems", Value::Texts(items)),
                    ],
                    &["ReturnValue", "Job"],
                )
                .map_err(|e| self.io(name, e))?;
            let value = out[0].integer().unwrap_or(-1);
            match protocol::returned(u32::try_from(value).unwrap_or(u32::MAX)) {
                Returned::Done => {}
                Returned::Job => {
                    let job = out[1].text().ok_or_else(|| {
                        self.failed(name, format!("{method} started a job without a path"))
                    })?;
                    self.wait(wmi.as_ref(), job)
                        .map_err(|e| self.failed(name, format!("{method}: {e}")))?;
                }
                Returned::Failed(reason) => {
                    return Err(self.failed(name, format!("{method} failed: {reason}")))
                }
            }
        }
        Ok(())
    }

    /// Polls the job at `path` until it ends (at most [`JOB_TIMEOUT`]).
    fn wait(&self, wmi: &dyn Connection, path: &str) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let job = wmi
                .get(path, &["JobState", "ErrorCode", "ErrorDescription"])
                .map_err(|e| e.to_string())?;
            let state = job[0].integer().unwrap_or(0) as u16;
            let code = job[1].integer().unwrap_or(0) as u32;
            match protocol::job_state(state, code) {
                JobState::Completed => return Ok(()),
                JobState::Failed(code) => {
                    let text = job[2].text().unwrap_or("").trim();
                    return Err(format!("the job failed with error code {code}: {text}")
                        .trim_end_matches([':', ' '])
                        .to_string());
                }
                JobState::Running if started.elapsed() >= JOB_TIMEOUT => {
                    return Err(format!(
                        "the job did not finish within {} s",
                        JOB_TIMEOUT.as_secs()
                    ))
                }
                JobState::Running => std::thread::sleep(self.poll),
            }
        }
    }
}

/// The host's view of a guest pool: what the guest reports (Guest), what the integration
/// services report (Auto), what the host set (External).
fn host_pool(pool: PoolId) -> Option<HostPool> {
    match pool {
        PoolId::External => Some(HostPool::External),
        PoolId::Guest => Some(HostPool::Guest),
        PoolId::Auto => Some(HostPool::GuestIntrinsic),
        PoolId::AutoExternal | PoolId::AutoInternal => None,
    }
}

impl KvpStore for HostWmi {
    fn location(&self, pool: PoolId) -> String {
        format!("VM {} ({pool}, Hyper-V WMI)", self.vm_id)
    }

    fn list(&self, pool: PoolId) -> Result<Listing, KvpError> {
        let host = host_pool(pool).ok_or_else(|| KvpError::NoSuchPool {
            store: format!("VM {} (Hyper-V WMI)", self.vm_id),
            pool,
        })?;
        self.list_host(host)
    }

    /// Reads the pool, lets `plan` decide and writes the difference. Hyper-V has no lock a
    /// client can hold, so a concurrent writer between the read and the write can be
    /// overwritten — as with the original and PowerShell.
    fn edit(&self, pool: PoolId, plan: &mut Plan<'_>) -> Result<(), KvpError> {
        let host = match host_pool(pool) {
            Some(host @ HostPool::External) => host,
            _ => {
                return Err(self.failed(
                    &pool.to_string(),
                    "a host writes only the External pool of a VM".into(),
                ))
            }
        };
        let current = self.list_host(host)?;
        let changes: Vec<Change> = plan(&current)?;
        Change::check_all(&changes)?;
        self.write(host, protocol::split(&current, &changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const VM: &str = "5c5b4a4e-1d2c-4b6a-9f00-abcdefabcdef";
    const SERVICE: &str = r#"\\HOST\root\virtualization\v2:Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms""#;
    const VM_PATH: &str = r#"\\HOST\root\virtualization\v2:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="5C5B4A4E-1D2C-4B6A-9F00-ABCDEFABCDEF""#;

    /// WMI answers recorded from a Hyper-V host, replayed; every request is logged.
    #[derive(Default)]
    struct Replay {
        pools: Vec<(HostPool, Vec<String>)>,
        vm_exists: bool,
        returns: Vec<(u32, Option<String>)>,
        jobs: Vec<(u16, u32, &'static str)>,
        log: Mutex<Vec<String>>,
        returns_used: Mutex<usize>,
        jobs_used: Mutex<usize>,
    }

    /// The replay as a connection (the trait is egs-sys's, so a local type carries it).
    #[derive(Clone)]
    struct Shared(Arc<Replay>);

    impl std::ops::Deref for Shared {
        type Target = Replay;
        fn deref(&self) -> &Replay {
            &self.0
        }
    }

    impl Connection for Shared {
        fn query(&self, wql: &str, properties: &[&str]) -> io::Result<Vec<Vec<Value>>> {
            self.log.lock().unwrap().push(format!("query {wql}"));
            if wql.contains(SERVICE_CLASS) {
                return Ok(vec![vec![Value::Text(SERVICE.into())]]);
            }
            if wql.contains("Msvm_ComputerSystem") {
                return Ok(if self.vm_exists {
                    vec![vec![Value::Text(VM_PATH.into())]]
                } else {
                    Vec::new()
                });
            }
            Ok(self
                .pools
                .iter()
                .filter(|(pool, _)| pool.property() == properties[0])
                .map(|(_, items)| vec![Value::Texts(items.clone())])
                .collect())
        }

        fn get(&self, path: &str, _properties: &[&str]) -> io::Result<Vec<Value>> {
            let mut used = self.jobs_used.lock().unwrap();
            let (state, code, text) = self.jobs[*used];
            *used += 1;
            self.log.lock().unwrap().push(format!("get {path}"));
            Ok(vec![
                Value::Integer(state as i64),
                Value::Integer(code as i64),
                Value::Text(text.into()),
            ])
        }

        fn call(
            &self,
            path: &str,
            class: &str,
            method: &str,
            inputs: &[(&str, Value)],
            _outputs: &[&str],
        ) -> io::Result<Vec<Value>> {
            assert_eq!((path, class), (SERVICE, SERVICE_CLASS));
            assert_eq!(inputs[0], ("TargetSystem", Value::Text(VM_PATH.into())));
            assert_eq!(inputs[1].0, "DataItems");
            let items: Vec<String> = inputs[1]
                .1
                .texts()
                .unwrap()
                .iter()
                .map(|i| {
                    let (k, v) = protocol::read_item(i).unwrap();
                    assert!(i.contains(r#"<PROPERTY NAME="Source" TYPE="uint16"><VALUE>0<"#));
                    format!("{k}={v}")
                })
                .collect();
            self.log
                .lock()
                .unwrap()
                .push(format!("{method} {}", items.join(",")));
            let mut used = self.returns_used.lock().unwrap();
            let (value, job) = self.returns.get(*used).cloned().unwrap_or((0, None));
            *used += 1;
            Ok(vec![
                Value::Integer(value as i64),
                job.map(Value::Text).unwrap_or(Value::Null),
            ])
        }
    }

    fn replayed(replay: Replay) -> (HostWmi, Arc<Replay>) {
        let replay = Arc::new(replay);
        let shared = Shared(replay.clone());
        let mut store = HostWmi::with_connector(
            VM,
            Box::new(move || Ok(Box::new(shared.clone()) as Box<dyn Connection>)),
        );
        store.poll = Duration::from_millis(1);
        (store, replay)
    }

    fn item(key: &str, value: &str, source: u16) -> String {
        protocol::data_item(key, value, source)
    }

    fn log(replay: &Replay) -> Vec<String> {
        replay.log.lock().unwrap().clone()
    }

    #[test]
    fn pools_are_read_from_their_queries() {
        let (store, replay) = replayed(Replay {
            pools: vec![
                (
                    HostPool::Guest,
                    vec![
                        item("eryph:guest-services:status", "available", 1),
                        "<INSTANCE CLASSNAME=\"Msvm_KvpExchangeDataItem\"/>".into(),
                        item("eryph.provisioning.state", r#"{"status":"done"}"#, 1),
                    ],
                ),
                (
                    HostPool::GuestIntrinsic,
                    vec![item("FullyQualifiedDomainName", "vm1", 2)],
                ),
                (HostPool::HostOnly, vec![item("note", "x", 4)]),
            ],
            ..Replay::default()
        });
        let guest = store.list(PoolId::Guest).unwrap();
        assert_eq!(guest.get("eryph:guest-services:status"), Some("available"));
        assert_eq!(guest.records.len(), 2);
        assert_eq!(
            guest.problems,
            ["GuestExchangeItems[1]: a KVP item without a Name"]
        );
        assert_eq!(
            store
                .get(PoolId::Auto, "FullyQualifiedDomainName")
                .unwrap()
                .as_deref(),
            Some("vm1")
        );
        // A VM that is off: no component, no items, no error (get-status says "unknown").
        assert!(store.list(PoolId::External).unwrap().records.is_empty());
        assert_eq!(
            store.list_host(HostPool::HostOnly).unwrap().get("note"),
            Some("x")
        );
        assert!(matches!(
            store.list(PoolId::AutoInternal),
            Err(KvpError::NoSuchPool { .. })
        ));
        assert_eq!(
            log(&replay)[0],
            "query SELECT SystemName,GuestExchangeItems FROM Msvm_KvpExchangeComponent WHERE SystemName = '5C5B4A4E-1D2C-4B6A-9F00-ABCDEFABCDEF'"
        );
    }

    #[test]
    fn a_write_adds_modifies_and_removes_and_waits_for_its_job() {
        let (store, replay) = replayed(Replay {
            pools: vec![(
                HostPool::External,
                vec![item("shell", "pwsh", 0), item("shell-args", "-NoLogo", 0)],
            )],
            vm_exists: true,
            returns: vec![(0, None), (4096, Some("job1".into()))],
            jobs: vec![(4, 0, ""), (7, 0, "")],
            ..Replay::default()
        });
        store
            .edit(PoolId::External, &mut |_| {
                Ok(vec![
                    Change::set("shell", "cmd.exe"),
                    Change::set("key:1", "ssh-ed25519 AAAA <x&y>"),
                    Change::Delete("shell-args".into()),
                    Change::Delete("never-there".into()),
                ])
            })
            .unwrap();
        let calls: Vec<String> = log(&replay)
            .into_iter()
            .filter(|l| !l.starts_with("query"))
            .collect();
        assert_eq!(
            calls,
            [
                "AddKvpItems key:1=ssh-ed25519 AAAA <x&y>",
                "ModifyKvpItems shell=cmd.exe",
                "get job1",
                "get job1",
                "RemoveKvpItems shell-args=",
            ]
        );
    }

    #[test]
    fn failures_say_which_call_and_why() {
        let (store, _) = replayed(Replay::default());
        let e = store.set(PoolId::External, "k", "v").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("VM {VM} (HostExchangeItems, Hyper-V WMI): The virtual machine with ID '{VM}' does not exist.")
        );
        let (store, _) = replayed(Replay {
            vm_exists: true,
            returns: vec![(32769, None)],
            ..Replay::default()
        });
        let e = store.set(PoolId::External, "k", "v").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("AddKvpItems failed: Access Denied (32769)"),
            "{e}"
        );
        let (store, _) = replayed(Replay {
            vm_exists: true,
            returns: vec![(4096, Some("job".into()))],
            jobs: vec![(
                10,
                32775,
                "The operation cannot be performed while the object is in its current state.",
            )],
            ..Replay::default()
        });
        let e = store.set(PoolId::External, "k", "v").unwrap_err();
        assert!(
            e.to_string().ends_with("AddKvpItems: the job failed with error code 32775: The operation cannot be performed while the object is in its current state."),
            "{e}"
        );
        let denied = io::Error::new(
            io::ErrorKind::PermissionDenied,
            "WMI query: access denied (0x80041003)",
        );
        assert_eq!(
            replayed(Replay::default()).0.io("HostExchangeItems", denied).to_string(),
            format!("VM {VM} (HostExchangeItems, Hyper-V WMI): WMI query: access denied (0x80041003); run it elevated (as an administrator) or as a member of Hyper-V Administrators")
        );
        let e = store.set(PoolId::Guest, "k", "v").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("a host writes only the External pool of a VM"),
            "{e}"
        );
        // Limits are checked before WMI hears anything.
        let e = store.set(PoolId::External, "", "v").unwrap_err();
        assert!(matches!(e, KvpError::EmptyKey));
    }

    #[test]
    #[cfg_attr(windows, ignore = "this machine may have Hyper-V")]
    fn off_windows_the_store_says_where_wmi_is() {
        let e = HostWmi::new(VM).list(PoolId::Guest).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("VM {VM} (GuestExchangeItems, Hyper-V WMI): a VM's KVP is read through Hyper-V's WMI, on its Windows host (elsewhere use --kvp-dir DIR with pool files)")
        );
    }
}
