//! WMI, Windows' management interface: connect to a namespace, run a WQL query, read an
//! object, call a method. Only what a Hyper-V host's KVP needs (`egs_kvp::wmi`): values are
//! text, arrays of text and integers. Every call is synchronous and COM is set up on the
//! calling thread (multithreaded apartment). Other OSes have no WMI: [`Namespace::connect`]
//! is an `Unsupported` error there.

use std::io;

/// Whether this OS has WMI.
pub const AVAILABLE: bool = cfg!(windows);

/// A property or parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// No value (`NULL` or empty).
    Null,
    /// A string (also how WMI hands out 64-bit integers and object paths).
    Text(String),
    /// An array of strings (for instance embedded instances as text).
    Texts(Vec<String>),
    /// An integer of any width, boolean as 0/1.
    Integer(i64),
}

impl Value {
    /// The text, if this is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The integer, if this is one (or a string of digits, as WMI hands out `uint64`).
    pub fn integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Text(t) => t.parse().ok(),
            _ => None,
        }
    }

    /// The strings of an array; `Null` is none.
    pub fn texts(&self) -> Option<&[String]> {
        match self {
            Value::Texts(t) => Some(t),
            Value::Null => Some(&[]),
            _ => None,
        }
    }
}

/// The text of the WMI error codes a caller can meet (`WBEM_E_*`), for messages.
pub fn error_text(hresult: u32) -> Option<&'static str> {
    Some(match hresult {
        0x8004_1001 => "call failed",
        0x8004_1002 => "not found",
        0x8004_1003 => "access denied",
        0x8004_1006 => "out of memory",
        0x8004_1008 => "invalid parameter",
        0x8004_100A => "critical error",
        0x8004_100E => "invalid namespace",
        0x8004_1010 => "invalid class",
        0x8004_1011 => "provider not found",
        0x8004_1013 => "provider load failure",
        0x8004_1017 => "invalid query",
        0x8004_102F => "invalid method parameters",
        0x8004_1033 => "shutting down",
        0x8007_0005 => "access denied",
        0x8007_06BA => "the RPC server is unavailable",
        _ => return None,
    })
}

/// A WMI failure as an I/O error that says what was asked and why it failed.
pub fn call_error(what: &str, hresult: u32, detail: &str) -> io::Error {
    let kind = match hresult {
        0x8004_1002 | 0x8004_100E | 0x8004_1010 => io::ErrorKind::NotFound,
        0x8004_1003 | 0x8007_0005 => io::ErrorKind::PermissionDenied,
        0x8004_1008 | 0x8004_1017 | 0x8004_102F => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    let text = error_text(hresult).unwrap_or(detail.trim());
    let text = if text.is_empty() { "failed" } else { text };
    io::Error::new(kind, format!("WMI {what}: {text} (0x{hresult:08X})"))
}

/// A connection to one WMI namespace (such as `root\virtualization\v2`).
pub struct Namespace {
    inner: imp::Namespace,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wmi::Namespace")
    }
}

impl Namespace {
    /// Connects to `name` on this machine as the calling user.
    pub fn connect(name: &str) -> io::Result<Namespace> {
        Ok(Namespace {
            inner: imp::Namespace::connect(name)?,
        })
    }
}

/// The text of `property` of the first `class` object in `root\cimv2` (one-instance
/// classes such as `Win32_OperatingSystem`), trimmed; `None` when it is empty or absent.
pub fn system_text(class: &str, property: &str) -> io::Result<Option<String>> {
    let rows = Namespace::connect(r"root\cimv2")?
        .query(&format!("SELECT {property} FROM {class}"), &[property])?;
    Ok(rows
        .first()
        .and_then(|row| row[0].text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// The three things asked of a WMI namespace; [`Namespace`] is the real one, and a caller's
/// tests can stand recorded answers in for it.
pub trait Connection {
    /// Runs `wql` and returns `properties` of every object found, in that order (`__PATH`
    /// gives an object's path).
    fn query(&self, wql: &str, properties: &[&str]) -> io::Result<Vec<Vec<Value>>>;
    /// The `properties` of the object at `path`.
    fn get(&self, path: &str, properties: &[&str]) -> io::Result<Vec<Value>>;
    /// Calls `method` of `class` on the object at `path` with `inputs`, and returns the
    /// output parameters named in `outputs` (such as `ReturnValue`, `Job`).
    fn call(
        &self,
        path: &str,
        class: &str,
        method: &str,
        inputs: &[(&str, Value)],
        outputs: &[&str],
    ) -> io::Result<Vec<Value>>;
}

impl Connection for Namespace {
    fn query(&self, wql: &str, properties: &[&str]) -> io::Result<Vec<Vec<Value>>> {
        self.inner.query(wql, properties)
    }

    fn get(&self, path: &str, properties: &[&str]) -> io::Result<Vec<Value>> {
        self.inner.get(path, properties)
    }

    fn call(
        &self,
        path: &str,
        class: &str,
        method: &str,
        inputs: &[(&str, Value)],
        outputs: &[&str],
    ) -> io::Result<Vec<Value>> {
        self.inner.call(path, class, method, inputs, outputs)
    }
}

#[cfg(not(windows))]
mod imp {
    use super::Value;
    use std::io;

    pub enum Namespace {}

    impl Namespace {
        pub fn connect(_name: &str) -> io::Result<Namespace> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "WMI exists only on Windows",
            ))
        }

        pub fn query(&self, _wql: &str, _properties: &[&str]) -> io::Result<Vec<Vec<Value>>> {
            match *self {}
        }

        pub fn get(&self, _path: &str, _properties: &[&str]) -> io::Result<Vec<Value>> {
            match *self {}
        }

        pub fn call(
            &self,
            _path: &str,
            _class: &str,
            _method: &str,
            _inputs: &[(&str, Value)],
            _outputs: &[&str],
        ) -> io::Result<Vec<Value>> {
            match *self {}
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::{call_error, Value};
    use std::ffi::c_void;
    use std::io;
    use std::mem::ManuallyDrop;
    use windows::core::{BSTR, HSTRING, PCWSTR};
    use windows::Win32::System::Com::{
        CoCreateInstance, CoInitializeEx, CoInitializeSecurity, CLSCTX_INPROC_SERVER,
        COINIT_MULTITHREADED, EOAC_NONE, RPC_C_AUTHN_LEVEL_DEFAULT, RPC_C_IMP_LEVEL_IMPERSONATE,
    };
    use windows::Win32::System::Ole::{
        SafeArrayCreateVector, SafeArrayGetElement, SafeArrayGetLBound, SafeArrayGetUBound,
        SafeArrayPutElement,
    };
    use windows::Win32::System::Variant::{
        VariantClear, VARIANT, VT_ARRAY, VT_BOOL, VT_BSTR, VT_EMPTY, VT_I1, VT_I2, VT_I4, VT_I8,
        VT_NULL, VT_UI1, VT_UI2, VT_UI4, VT_UI8,
    };
    use windows::Win32::System::Wmi::{
        IWbemClassObject, IWbemLocator, IWbemServices, WbemLocator, WBEM_FLAG_FORWARD_ONLY,
        WBEM_FLAG_RETURN_IMMEDIATELY, WBEM_FLAG_RETURN_WBEM_COMPLETE, WBEM_INFINITE,
    };

    fn failed(what: &str, e: windows::core::Error) -> io::Error {
        call_error(what, e.code().0 as u32, &e.message())
    }

    /// COM on this thread (once per thread; a thread already in COM is fine) and the
    /// process's default security (once; "too late" means someone set it already).
    fn com() -> io::Result<()> {
        thread_local!(static READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if READY.with(|r| r.get()) {
            return Ok(());
        }
        // SAFETY: plain COM initialisation calls without pointers of ours.
        unsafe {
            let hr = CoInitializeEx(None, COINIT_MULTITHREADED);
            // S_FALSE: already initialised; RPC_E_CHANGED_MODE: an STA thread, usable.
            if hr.is_err() && hr.0 as u32 != 0x8001_0106 {
                return Err(failed("COM initialisation", hr.into()));
            }
            if let Err(e) = CoInitializeSecurity(
                None,
                -1,
                None,
                None,
                RPC_C_AUTHN_LEVEL_DEFAULT,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
                None,
            ) {
                if e.code().0 as u32 != 0x8001_0119 {
                    return Err(failed("COM security", e));
                }
            }
        }
        READY.with(|r| r.set(true));
        Ok(())
    }

    /// A VARIANT we own, cleared when dropped.
    struct Owned(VARIANT);

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: the VARIANT was initialised by WMI or by `to_variant`.
            unsafe {
                let _ = VariantClear(&mut self.0);
            }
        }
    }

    fn to_variant(value: &Value) -> io::Result<Owned> {
        let mut v = Owned(VARIANT::default());
        // SAFETY: we set the type tag and the matching union member together; strings and
        // arrays are allocated by COM and released by VariantClear.
        unsafe {
            let inner = &mut *v.0.Anonymous.Anonymous;
            match value {
                Value::Null => inner.vt = VT_NULL,
                Value::Text(t) => {
                    inner.vt = VT_BSTR;
                    inner.Anonymous.bstrVal = ManuallyDrop::new(BSTR::from(t.as_str()));
                }
                Value::Integer(i) => {
                    inner.vt = VT_I4;
                    inner.Anonymous.lVal = i32::try_from(*i).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidInput, "integer out of range")
                    })?;
                }
                Value::Texts(items) => {
                    let array = SafeArrayCreateVector(VT_BSTR, 0, items.len() as u32);
                    if array.is_null() {
                        return Err(io::Error::new(io::ErrorKind::OutOfMemory, "SAFEARRAY"));
                    }
                    // The array is the VARIANT's from here, so VariantClear frees it.
                    inner.vt = VT_ARRAY | VT_BSTR;
                    inner.Anonymous.parray = array;
                    for (i, item) in items.iter().enumerate() {
                        // An empty string is a null BSTR (`as_ptr` would hand out a
                        // static buffer without the length prefix COM reads).
                        let item = BSTR::from(item.as_str());
                        let pointer = if item.is_empty() {
                            std::ptr::null()
                        } else {
                            item.as_ptr() as *const c_void
                        };
                        SafeArrayPutElement(array, &(i as i32), pointer)
                            .map_err(|e| failed("array element", e))?;
                    }
                }
            }
        }
        Ok(v)
    }

    fn from_variant(v: &VARIANT) -> io::Result<Value> {
        // SAFETY: the union member read is the one the type tag names.
        unsafe {
            let inner = &*v.Anonymous.Anonymous;
            let u = &inner.Anonymous;
            Ok(match inner.vt {
                VT_EMPTY | VT_NULL => Value::Null,
                VT_BSTR => Value::Text(u.bstrVal.to_string()),
                VT_BOOL => Value::Integer((u.boolVal.0 != 0) as i64),
                VT_I1 => Value::Integer(u.cVal as i64),
                VT_UI1 => Value::Integer(u.bVal as i64),
                VT_I2 => Value::Integer(u.iVal as i64),
                VT_UI2 => Value::Integer(u.uiVal as i64),
                VT_I4 => Value::Integer(u.lVal as i64),
                VT_UI4 => Value::Integer(u.ulVal as i64),
                VT_I8 => Value::Integer(u.llVal),
                VT_UI8 => Value::Integer(u.ullVal as i64),
                vt if vt == VT_ARRAY | VT_BSTR => {
                    let array = u.parray;
                    let low = SafeArrayGetLBound(array, 1).map_err(|e| failed("array", e))?;
                    let high = SafeArrayGetUBound(array, 1).map_err(|e| failed("array", e))?;
                    let mut items = Vec::new();
                    for i in low..=high {
                        let mut item = BSTR::new();
                        SafeArrayGetElement(array, &i, &mut item as *mut BSTR as *mut c_void)
                            .map_err(|e| failed("array element", e))?;
                        items.push(item.to_string());
                    }
                    Value::Texts(items)
                }
                vt => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("WMI value of an unexpected type (VARTYPE {})", vt.0),
                    ))
                }
            })
        }
    }

    fn property(object: &IWbemClassObject, name: &str) -> io::Result<Value> {
        let wide = HSTRING::from(name);
        let mut v = Owned(VARIANT::default());
        // SAFETY: `v` receives a VARIANT that `Owned` clears.
        unsafe { object.Get(PCWSTR(wide.as_ptr()), 0, &mut v.0, None, None) }
            .map_err(|e| failed(&format!("property {name}"), e))?;
        from_variant(&v.0)
    }

    fn properties(object: &IWbemClassObject, names: &[&str]) -> io::Result<Vec<Value>> {
        names.iter().map(|n| property(object, n)).collect()
    }

    pub struct Namespace {
        services: IWbemServices,
    }

    #[cfg(test)]
    #[test]
    fn values_survive_the_trip_through_a_variant() {
        for value in [
            Value::Null,
            Value::Text("<INSTANCE/> ü".into()),
            Value::Integer(-4096),
            Value::Texts(vec!["a".into(), String::new(), "ü&".into()]),
            Value::Texts(Vec::new()),
        ] {
            let v = to_variant(&value).unwrap();
            assert_eq!(from_variant(&v.0).unwrap(), value);
        }
        assert!(to_variant(&Value::Integer(1 << 40)).is_err());
    }

    impl Namespace {
        pub fn connect(name: &str) -> io::Result<Namespace> {
            com()?;
            // SAFETY: COM calls with owned arguments; results are COM smart pointers.
            unsafe {
                let locator: IWbemLocator =
                    CoCreateInstance(&WbemLocator, None, CLSCTX_INPROC_SERVER)
                        .map_err(|e| failed("locator", e))?;
                let services = locator
                    .ConnectServer(
                        &BSTR::from(name),
                        &BSTR::new(),
                        &BSTR::new(),
                        &BSTR::new(),
                        0,
                        &BSTR::new(),
                        None,
                    )
                    .map_err(|e| failed(&format!("namespace {name}"), e))?;
                Ok(Namespace { services })
            }
        }

        pub fn query(&self, wql: &str, names: &[&str]) -> io::Result<Vec<Vec<Value>>> {
            // SAFETY: COM calls with owned arguments; the enumerator hands out owned objects.
            unsafe {
                let rows = self
                    .services
                    .ExecQuery(
                        &BSTR::from("WQL"),
                        &BSTR::from(wql),
                        WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY,
                        None,
                    )
                    .map_err(|e| failed(&format!("query '{wql}'"), e))?;
                let mut out = Vec::new();
                loop {
                    let mut row = [None];
                    let mut returned = 0;
                    let hr = rows.Next(WBEM_INFINITE, &mut row, &mut returned);
                    if hr.is_err() {
                        return Err(failed(&format!("query '{wql}'"), hr.into()));
                    }
                    match row[0].take() {
                        Some(object) if returned == 1 => out.push(properties(&object, names)?),
                        _ => break,
                    }
                }
                Ok(out)
            }
        }

        fn object(&self, path: &str) -> io::Result<IWbemClassObject> {
            let mut object = None;
            // SAFETY: `object` receives an owned COM pointer.
            unsafe {
                self.services.GetObject(
                    &BSTR::from(path),
                    WBEM_FLAG_RETURN_WBEM_COMPLETE,
                    None,
                    Some(&mut object),
                    None,
                )
            }
            .map_err(|e| failed(&format!("object {path}"), e))?;
            object.ok_or_else(|| call_error(&format!("object {path}"), 0x8004_1002, ""))
        }

        pub fn get(&self, path: &str, names: &[&str]) -> io::Result<Vec<Value>> {
            properties(&self.object(path)?, names)
        }

        pub fn call(
            &self,
            path: &str,
            class: &str,
            method: &str,
            inputs: &[(&str, Value)],
            outputs: &[&str],
        ) -> io::Result<Vec<Value>> {
            let what = format!("{class}.{method}");
            let class_object = self.object(class)?;
            let method_name = HSTRING::from(method);
            let mut signature = None;
            // SAFETY: COM calls with owned arguments; out pointers receive owned objects.
            unsafe {
                class_object
                    .GetMethod(
                        PCWSTR(method_name.as_ptr()),
                        0,
                        &mut signature,
                        std::ptr::null_mut(),
                    )
                    .map_err(|e| failed(&what, e))?;
                let parameters = match signature {
                    Some(signature) => {
                        let parameters =
                            signature.SpawnInstance(0).map_err(|e| failed(&what, e))?;
                        for (name, value) in inputs {
                            let v = to_variant(value)?;
                            let wide = HSTRING::from(*name);
                            parameters
                                .Put(PCWSTR(wide.as_ptr()), 0, &v.0, 0)
                                .map_err(|e| failed(&format!("{what} parameter {name}"), e))?;
                        }
                        Some(parameters)
                    }
                    None => None,
                };
                let mut result = None;
                self.services
                    .ExecMethod(
                        &BSTR::from(path),
                        &BSTR::from(method),
                        Default::default(),
                        None,
                        parameters.as_ref(),
                        Some(&mut result),
                        None,
                    )
                    .map_err(|e| failed(&what, e))?;
                match result {
                    Some(result) => properties(&result, outputs),
                    None => Ok(outputs.iter().map(|_| Value::Null).collect()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_what_they_hold() {
        assert_eq!(Value::Text("7".into()).integer(), Some(7));
        assert_eq!(Value::Integer(4096).integer(), Some(4096));
        assert_eq!(Value::Null.texts(), Some(&[][..]));
        assert_eq!(Value::Integer(1).texts(), None);
        assert_eq!(Value::Text("x".into()).text(), Some("x"));
    }

    #[test]
    fn errors_name_the_call_and_the_wmi_code() {
        let e = call_error(r"namespace root\virtualization\v2", 0x8004_100E, "");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            r"WMI namespace root\virtualization\v2: invalid namespace (0x8004100E)"
        );
        let e = call_error("query", 0x8004_1003, "");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            call_error("x", 0x8000_4005, " Unspecified error\r\n").to_string(),
            "WMI x: Unspecified error (0x80004005)"
        );
    }

    /// The COM layer against namespaces Wine and Windows both have (Windows only: WMI).
    #[cfg(windows)]
    #[test]
    fn queries_and_method_calls_reach_wmi() {
        let cimv2 = Namespace::connect(r"root\cimv2").unwrap();
        let rows = cimv2
            .query(
                "SELECT Caption,__PATH FROM Win32_OperatingSystem",
                &["Caption", "__PATH"],
            )
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0][0].text().is_some_and(|c| !c.is_empty()), "{rows:?}");
        let e = Namespace::connect(r"root\no\such\namespace").unwrap_err();
        assert!(e.to_string().contains("root\\no\\such\\namespace"), "{e}");
        // A method with in and out parameters: StdRegProv reads the registry.
        let default = Namespace::connect(r"root\default").unwrap();
        let out = default
            .call(
                "StdRegProv",
                "StdRegProv",
                "GetStringValue",
                &[
                    ("hDefKey", Value::Integer(0x8000_0002u32 as i32 as i64)),
                    (
                        "sSubKeyName",
                        Value::Text(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion".into()),
                    ),
                    ("sValueName", Value::Text("CurrentVersion".into())),
                ],
                &["ReturnValue", "sValue"],
            )
            .unwrap();
        assert_eq!(out[0].integer(), Some(0), "{out:?}");
        assert!(out[1].text().is_some_and(|v| v.contains('.')), "{out:?}");
        // Arrays of strings out (what a KVP pool is): the subkeys CreateKey made.
        let subkey = |name: &str| {
            [
                ("hDefKey", Value::Integer(0x8000_0001u32 as i32 as i64)),
                (
                    "sSubKeyName",
                    Value::Text(format!(r"Software\egs-wmi-test{name}")),
                ),
            ]
        };
        for name in [r"\a<b>", r"\ü"] {
            let created = default
                .call(
                    "StdRegProv",
                    "StdRegProv",
                    "CreateKey",
                    &subkey(name),
                    &["ReturnValue"],
                )
                .unwrap();
            assert_eq!(created[0].integer(), Some(0), "{created:?}");
        }
        let out = default
            .call(
                "StdRegProv",
                "StdRegProv",
                "EnumKey",
                &subkey(""),
                &["ReturnValue", "sNames"],
            )
            .unwrap();
        let mut names = out[1].texts().unwrap().to_vec();
        names.sort();
        assert_eq!(names, ["a<b>", "ü"], "{out:?}");
    }
}
