//! SMBIOS strings datasources read: the system UUID (Azure's instance id) and the system
//! serial number (NoCloud's `ds=nocloud;…` in the serial). Linux reads them from sysfs
//! below the root (`egs_datasource::env`); Windows from WMI (`Win32_ComputerSystemProduct`,
//! `Win32_BIOS`): these functions are those Windows reads, `None` elsewhere.

/// The SMBIOS system UUID, lower case.
pub fn system_uuid() -> Option<String> {
    windows_text("Win32_ComputerSystemProduct", "UUID").map(|u| u.to_lowercase())
}

/// The SMBIOS system serial number.
pub fn serial() -> Option<String> {
    windows_text("Win32_BIOS", "SerialNumber")
}

fn windows_text(class: &str, property: &str) -> Option<String> {
    if !crate::WINDOWS {
        return None;
    }
    crate::wmi::system_text(class, property).ok().flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_reads_smbios_through_wmi() {
        if crate::WINDOWS {
            // Wine fills Win32_ComputerSystemProduct from the machine's SMBIOS.
            let uuid = super::system_uuid().expect("a system UUID");
            assert_eq!(uuid.len(), 36, "{uuid}");
            assert_eq!(uuid, uuid.to_lowercase());
        } else {
            assert_eq!(super::system_uuid(), None);
            assert_eq!(super::serial(), None);
        }
    }
}
