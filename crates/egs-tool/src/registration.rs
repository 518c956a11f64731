//! The Hyper-V host's registration of EGS's service: a Hyper-V socket service id must be
//! listed under `GuestCommunicationServices` before the host can connect to guests on it.
//! `initialize` adds it (`0000138A-FACB-11E6-BD58-64006A7986D3`, `ElementName` = `Eryph
//! Guest Services`), `unregister` removes it, as the original does. Only Windows hosts run
//! Hyper-V: elsewhere there is nothing to register.

use crate::remote::Failure;

/// Where Hyper-V lists the services of its guests' sockets (below `HKLM`).
pub const SERVICES_KEY: &str =
    r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices";
/// The name the registration shows.
pub const ELEMENT_NAME: &str = "Eryph Guest Services";

/// The service's key: its GUID upper-cased, no braces.
pub fn service_key() -> String {
    let id = egs_transport::egs_service_id().to_string().to_uppercase();
    format!(r"{SERVICES_KEY}\{id}")
}

fn require_elevation() -> Result<(), Failure> {
    if egs_sys::host::is_elevated() {
        return Ok(());
    }
    Err(Failure {
        code: 1,
        message: "This command requires elevated privileges. Please run the command as an \
                  administrator."
            .into(),
    })
}

/// Registers the service on a Windows Hyper-V host; `Ok(None)` where there is no Hyper-V.
pub fn register() -> Result<Option<String>, Failure> {
    if !egs_sys::WINDOWS {
        return Ok(None);
    }
    require_elevation()?;
    if !egs_sys::registry::key_exists(SERVICES_KEY) {
        return Err(format!(
            "Could not open the GuestCommunicationServices registry key (HKLM\\{SERVICES_KEY}): \
             is Hyper-V installed on this machine?"
        )
        .into());
    }
    let key = service_key();
    egs_sys::registry::set_string(&key, "ElementName", ELEMENT_NAME)
        .map_err(|e| format!("HKLM\\{key}: {e}"))?;
    Ok(Some(format!(
        "Registered the service with Hyper-V: HKLM\\{key}"
    )))
}

/// `unregister`: removes the registration (silently when it is not there).
pub fn unregister() -> Result<String, Failure> {
    if !egs_sys::WINDOWS {
        return Err(Failure {
            code: 2,
            message: "unregister removes the Hyper-V registration of a Windows host; this host \
                      has none"
                .into(),
        });
    }
    require_elevation()?;
    let key = service_key();
    egs_sys::registry::delete_tree(&key).map_err(|e| format!("HKLM\\{key}: {e}"))?;
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_service_key_is_the_upper_case_guid_without_braces() {
        assert_eq!(
            super::service_key(),
            r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices\0000138A-FACB-11E6-BD58-64006A7986D3"
        );
    }
}
