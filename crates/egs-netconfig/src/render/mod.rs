//! Renderers: network state → the files a distribution's network stack reads, at the paths
//! and with the headers cloud-init uses on Debian. Pure: this returns files, `apply` writes.

pub mod eni;
pub mod netplan;
pub mod networkd;
pub mod networkd_devices;
mod yaml;

use std::fmt;
use std::str::FromStr;

use crate::state::NetworkState;
use crate::value::{Dict, DictExt};

pub use yaml::to_yaml;

/// Subnet types configured by IPv6 autoconfiguration or DHCPv6.
pub(crate) const IPV6_DYNAMIC_TYPES: &[&str] = &[
    "dhcp6",
    "ipv6_slaac",
    "ipv6_dhcpv6-stateless",
    "ipv6_dhcpv6-stateful",
];

/// The header cloud-init puts on the files it renders (netplan and ENI).
pub const FILE_HEADER: &str = "\
# This file is generated from information provided by the datasource.  Changes
# to it will not persist across an instance reboot.  To disable cloud-init's
# network configuration capabilities, write a file
# /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg with the following:
# network: {config: disabled}
";

/// Where netplan reads the rendered configuration.
pub const NETPLAN_PATH: &str = "etc/netplan/50-cloud-init.yaml";
/// Where systemd-networkd reads `.network` files.
pub const NETWORKD_DIR: &str = "etc/systemd/network";
/// Where Debian's ifupdown reads the rendered stanzas.
pub const ENI_PATH: &str = "etc/network/interfaces.d/50-cloud-init";
/// udev rules that name interfaces by MAC (written with ENI).
pub const UDEV_RULES_PATH: &str = "etc/udev/rules.d/70-persistent-net.rules";

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// netplan YAML.
    Netplan,
    /// systemd-networkd `.network` files.
    Networkd,
    /// ifupdown `/etc/network/interfaces` stanzas.
    Eni,
}

impl Renderer {
    /// The name used on the command line (`netplan`, `networkd`, `eni`).
    pub fn name(self) -> &'static str {
        match self {
            Renderer::Netplan => "netplan",
            Renderer::Networkd => "networkd",
            Renderer::Eni => "eni",
        }
    }
}

impl fmt::Display for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Renderer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "netplan" => Ok(Renderer::Netplan),
            "networkd" => Ok(Renderer::Networkd),
            "eni" => Ok(Renderer::Eni),
            other => Err(format!(
                "unknown output kind '{other}' (expected netplan, networkd or eni)"
            )),
        }
    }
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the target root, e.g. `etc/netplan/50-cloud-init.yaml`.
    pub path: String,
    /// File contents.
    pub contents: String,
    /// Permission bits (cloud-init writes 0644).
    pub mode: u32,
}

impl RenderedFile {
    fn new(path: String, contents: String) -> Self {
        Self {
            path,
            contents,
            mode: 0o644,
        }
    }
}

/// How much to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fidelity {
    /// Exactly the files cloud-init 22.4.2 writes (what `net-convert` shows by default
    /// and the conformance tests compare).
    #[default]
    CloudInit,
    /// What a system needs to come up as configured: for networkd also `.netdev` files for
    /// bonds, bridges and VLANs, drop-ins attaching their members and `.link` files naming
    /// interfaces by MAC; the netplan file readable by root only (it may hold wifi
    /// passwords, and netplan warns about anything wider). Used when applying.
    Complete,
}

/// Renders `state` with `renderer`.
pub fn render(state: &NetworkState, renderer: Renderer, fidelity: Fidelity) -> Vec<RenderedFile> {
    let complete = fidelity == Fidelity::Complete;
    match renderer {
        Renderer::Netplan => {
            let mut file = RenderedFile::new(
                NETPLAN_PATH.into(),
                format!("{FILE_HEADER}{}", netplan::render(state)),
            );
            if complete {
                file.mode = 0o600;
            }
            vec![file]
        }
        Renderer::Networkd => {
            let mut files: Vec<RenderedFile> = networkd::render(state, fidelity)
                .into_iter()
                .map(|(name, body)| {
                    RenderedFile::new(format!("{NETWORKD_DIR}/10-cloud-init-{name}.network"), body)
                })
                .collect();
            if complete {
                files.extend(
                    networkd_devices::render(state)
                        .into_iter()
                        .map(|(path, body)| RenderedFile::new(path, body)),
                );
            }
            files
        }
        Renderer::Eni => vec![
            RenderedFile::new(
                ENI_PATH.into(),
                format!("{FILE_HEADER}{}", eni::render_interfaces(state)),
            ),
            RenderedFile::new(UDEV_RULES_PATH.into(), eni::render_udev_rules(state)),
        ],
    }
}

/// cloud-init's `subnet_is_ipv6`: an IPv6 subnet type, or a static subnet with an IPv6
/// address.
pub(crate) fn subnet_is_ipv6(subnet: &Dict) -> bool {
    let kind = subnet.text_of("type").unwrap_or_default();
    if kind.ends_with('6') || IPV6_DYNAMIC_TYPES.contains(&kind.as_str()) {
        return true;
    }
    kind == "static"
        && subnet
            .text_of("address")
            .is_some_and(|a| crate::ip::is_ipv6_address(&a))
}
