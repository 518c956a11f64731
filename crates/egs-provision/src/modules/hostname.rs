//! Host identity: `set_hostname` and `update_hostname` (`/etc/hostname` and the running
//! host name, honouring `preserve_hostname`, `fqdn`, `prefer_fqdn_over_hostname`),
//! `update_etc_hosts` (`manage_etc_hosts`) and `timezone`.

use egs_cloudconfig::schema::ManageEtcHosts;

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::state::Frequency;

/// `set_hostname`.
pub const SET_HOSTNAME: Module = Module {
    name: "set_hostname",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: set_hostname,
};

/// `update_hostname`: cloud-init runs it every boot; here it re-applies the same name (on
/// Windows `set_hostname` alone renames, once, with its reboot).
pub const UPDATE_HOSTNAME: Module = Module {
    name: "update_hostname",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: |ctx| {
        if ctx.system.is_windows() {
            Ok(Outcome::NothingToDo)
        } else {
            set_hostname(ctx)
        }
    },
};

/// `update_etc_hosts`.
pub const UPDATE_ETC_HOSTS: Module = Module {
    name: "update_etc_hosts",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: update_etc_hosts,
};

/// `timezone`.
pub const TIMEZONE: Module = Module {
    name: "timezone",
    stage: Stage::Config,
    frequency: Frequency::PerInstance,
    run: timezone,
};

/// cloud-init's `get_hostname_fqdn`: the short name and the fully qualified name.
fn names(ctx: &Context) -> Option<(String, String)> {
    let c = ctx.config;
    let (hostname, fqdn) = match (&c.hostname, &c.fqdn) {
        (_, Some(fqdn)) => (
            c.hostname
                .clone()
                .unwrap_or_else(|| fqdn.split('.').next().unwrap_or(fqdn).to_string()),
            fqdn.clone(),
        ),
        (Some(h), None) if h.contains('.') => {
            (h.split('.').next().unwrap_or(h).to_string(), h.clone())
        }
        (Some(h), None) => (h.clone(), h.clone()),
        (None, None) => {
            let h = ctx.datasource.hostname.clone()?;
            (h.split('.').next().unwrap_or(&h).to_string(), h)
        }
    };
    Some((hostname, fqdn))
}

fn set_hostname(ctx: &mut Context) -> ModuleResult {
    if ctx.config.preserve_hostname == Some(true) {
        ctx.log
            .push("preserve_hostname is set: host name left alone".into());
        return Ok(Outcome::NothingToDo);
    }
    let Some((short, fqdn)) = names(ctx) else {
        return Ok(Outcome::NothingToDo);
    };
    let name = if ctx.config.prefer_fqdn_over_hostname == Some(true) {
        fqdn
    } else {
        short
    };
    if ctx.system.is_windows() {
        // A computer name is a NetBIOS name: at most 15 characters, the original's rule.
        let netbios = netbios_name(&name);
        if netbios != name {
            ctx.log.push(format!(
                "host name {name} truncated to {netbios} (Windows computer names have at most 15 characters)"
            ));
        }
        if ctx.system.set_hostname(&netbios)? {
            ctx.log
                .push(format!("Hostname change to '{netbios}' requires reboot."));
            return Ok(Outcome::Reboot { again: false });
        }
        ctx.log.push(format!("computer name {netbios}"));
        return Ok(Outcome::Done);
    }
    if ctx.system.read_file("/etc/hostname")?.as_deref() != Some(format!("{name}\n").as_bytes())
        && ctx.config.create_hostname_file != Some(false)
    {
        ctx.system
            .write_file("/etc/hostname", format!("{name}\n").as_bytes(), 0o644, None)?;
    }
    ctx.system.set_hostname(&name)?;
    ctx.log.push(format!("host name {name}"));
    Ok(Outcome::Done)
}

/// The first 15 characters of a name (Windows' NetBIOS limit).
pub fn netbios_name(name: &str) -> String {
    name.chars().take(15).collect()
}

fn update_etc_hosts(ctx: &mut Context) -> ModuleResult {
    if ctx.system.is_windows() {
        return Ok(Outcome::NothingToDo);
    }
    let mode = ctx
        .config
        .manage_etc_hosts
        .unwrap_or(ManageEtcHosts::Disabled);
    let Some((short, fqdn)) = names(ctx) else {
        return Ok(Outcome::NothingToDo);
    };
    let line = if fqdn != short {
        format!("127.0.1.1 {fqdn} {short}")
    } else {
        format!("127.0.1.1 {short}")
    };
    let hosts = match mode {
        ManageEtcHosts::Disabled => return Ok(Outcome::NothingToDo),
        ManageEtcHosts::Template => format!(
            "# Your system has configured 'manage_etc_hosts' as True.\n# As a result, if you wish for changes to this file to persist\n# then you will need to either\n# a.) make changes to the master file in cloud-config\n# b.) change or remove the value of 'manage_etc_hosts' in cloud-config\n127.0.0.1 localhost\n{line}\n\n# The following lines are desirable for IPv6 capable hosts\n::1 localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"
        ),
        ManageEtcHosts::Localhost => {
            let current = String::from_utf8_lossy(&ctx.system.read_file("/etc/hosts")?.unwrap_or_default()).into_owned();
            let mut lines: Vec<String> = current.lines().filter(|l| !l.trim_start().starts_with("127.0.1.1")).map(str::to_string).collect();
            lines.push(line);
            lines.join("\n") + "\n"
        }
    };
    ctx.system
        .write_file("/etc/hosts", hosts.as_bytes(), 0o644, None)?;
    Ok(Outcome::Done)
}

fn timezone(ctx: &mut Context) -> ModuleResult {
    let Some(zone) = ctx.config.timezone.clone() else {
        return Ok(Outcome::NothingToDo);
    };
    ctx.system.set_timezone(&zone)?;
    ctx.log.push(format!("time zone {zone}"));
    Ok(Outcome::Done)
}
