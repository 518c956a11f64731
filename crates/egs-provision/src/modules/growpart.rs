//! `growpart` and `resizefs` (network stage, every run): grow the partition under `/` (or
//! the configured devices) to fill its disk, then the file system on it, as cloud-init
//! does with cloud-utils' `growpart` and `resize2fs`/`xfs_growfs`/`btrfs`. The device of a
//! mount point comes from `/proc/self/mountinfo` and `/sys/dev/block/<major:minor>`, which
//! also resolves `/dev/root`. Skipped when the tools are missing, when
//! `/etc/growroot-disabled` exists (unless `ignore_growroot_disabled`), or with
//! `mode: off`. In a sandbox the commands are recorded, not run: its disks are not real.

use egs_cloudconfig::schema::ResizeRootfs;

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Command;
use crate::state::Frequency;
use crate::system::{which, SystemError};

/// `growpart`.
pub const GROWPART: Module = Module {
    name: "growpart",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: growpart,
};
/// `resizefs`.
pub const RESIZEFS: Module = Module {
    name: "resizefs",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: resizefs,
};

/// A mounted block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// `/dev/vda1`.
    pub device: String,
    /// `/dev/vda`, when the device is a partition.
    pub disk: Option<String>,
    /// Partition number, when it is one.
    pub partition: Option<u32>,
    /// File system type.
    pub fstype: String,
}

/// Finds the block device mounted at `mount_point` (the last mount there wins).
pub fn mounted_device(ctx: &Context, mount_point: &str) -> Result<Option<Mounted>, SystemError> {
    let system = ctx.system;
    let mountinfo = String::from_utf8_lossy(
        &system
            .read_file("/proc/self/mountinfo")?
            .unwrap_or_default(),
    )
    .into_owned();
    let Some((major_minor, fstype)) = mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&mount_point)).then(|| {
            (
                fields[2].to_string(),
                fields.get(dash + 1).unwrap_or(&"").to_string(),
            )
        })
    }) else {
        return Ok(None);
    };
    let sys = system
        .layout
        .host(&format!("/sys/dev/block/{major_minor}"))?;
    let Ok(target) = std::fs::canonicalize(&sys) else {
        return Ok(None);
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partition = std::fs::read_to_string(target.join("partition"))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let disk = partition
        .and(target.parent())
        .and_then(|p| p.file_name())
        .map(|n| format!("/dev/{}", n.to_string_lossy()));
    Ok(Some(Mounted {
        device: format!("/dev/{name}"),
        disk,
        partition,
        fstype,
    }))
}

/// Runs a disk command, or records it in a sandbox.
fn act(
    ctx: &mut Context,
    argv: Vec<String>,
) -> Result<Option<crate::command::Output>, SystemError> {
    let line = argv.join(" ");
    if ctx.system.is_sandbox() {
        ctx.system.record_action("disk", &line)?;
        ctx.log.push(format!("recorded (sandbox): {line}"));
        return Ok(None);
    }
    let out = Command::new(argv).run().map_err(|e| SystemError::Command {
        command: line.clone(),
        message: e.to_string(),
    })?;
    ctx.log.push(format!("{line}: exit status {:?}", out.code));
    Ok(Some(out))
}

fn growpart(ctx: &mut Context) -> ModuleResult {
    let config = ctx
        .config
        .growpart
        .clone()
        .unwrap_or(egs_cloudconfig::schema::Growpart {
            mode: "auto".into(),
            devices: vec!["/".into()],
            ignore_growroot_disabled: false,
        });
    if config.mode == "off" {
        return Ok(Outcome::NothingToDo);
    }
    if !config.ignore_growroot_disabled && ctx.system.read_file("/etc/growroot-disabled")?.is_some()
    {
        ctx.log
            .push("/etc/growroot-disabled exists: not growing".into());
        return Ok(Outcome::NothingToDo);
    }
    if !ctx.system.is_sandbox() && !which("growpart") {
        ctx.log
            .push("growpart (cloud-guest-utils) is not installed: not growing".into());
        return Ok(Outcome::NothingToDo);
    }
    let mut did = false;
    for device in &config.devices {
        let target = if device.starts_with("/dev/") {
            None
        } else {
            mounted_device(ctx, device)?
        };
        let (disk, partition) = match (&target, device.starts_with("/dev/")) {
            (
                Some(Mounted {
                    disk: Some(d),
                    partition: Some(p),
                    ..
                }),
                _,
            ) => (d.clone(), *p),
            (_, true) => {
                let name = device.trim_start_matches("/dev/");
                let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                let Ok(p) = name[name.len() - digits..].parse::<u32>() else {
                    continue;
                };
                let disk = &name[..name.len() - digits];
                // nvme0n1p3 and mmcblk0p1 separate the partition number with a 'p'.
                let disk = match disk.strip_suffix('p') {
                    Some(d) if d.ends_with(|c: char| c.is_ascii_digit()) => d,
                    _ => disk,
                };
                (format!("/dev/{disk}"), p)
            }
            _ => {
                ctx.log
                    .push(format!("{device}: not a partition on a disk; not growing"));
                continue;
            }
        };
        match act(
            ctx,
            vec!["growpart".into(), disk.clone(), partition.to_string()],
        )? {
            Some(out)
                if !out.success() && !String::from_utf8_lossy(&out.stdout).contains("NOCHANGE") =>
            {
                return Err(SystemError::Command {
                    command: format!("growpart {disk} {partition}"),
                    message: out.failure_text(),
                });
            }
            _ => did = true,
        }
    }
    Ok(if did {
        Outcome::Done
    } else {
        Outcome::NothingToDo
    })
}

fn resizefs(ctx: &mut Context) -> ModuleResult {
    if ctx.config.resize_rootfs == Some(ResizeRootfs::Disabled) {
        return Ok(Outcome::NothingToDo);
    }
    let Some(root) = mounted_device(ctx, "/")? else {
        ctx.log
            .push("no block device found for /: not resizing".into());
        return Ok(Outcome::NothingToDo);
    };
    let argv: Vec<String> = match root.fstype.as_str() {
        "ext2" | "ext3" | "ext4" => vec!["resize2fs".into(), root.device.clone()],
        "xfs" => vec!["xfs_growfs".into(), "/".into()],
        "btrfs" => vec![
            "btrfs".into(),
            "filesystem".into(),
            "resize".into(),
            "max".into(),
            "/".into(),
        ],
        other => {
            ctx.log.push(format!("/ is {other}: not resizing"));
            return Ok(Outcome::NothingToDo);
        }
    };
    if !ctx.system.is_sandbox() && !which(&argv[0]) {
        ctx.log
            .push(format!("{} is not installed: not resizing", argv[0]));
        return Ok(Outcome::NothingToDo);
    }
    if let Some(out) = act(ctx, argv.clone())? {
        if !out.success() {
            return Err(SystemError::Command {
                command: argv.join(" "),
                message: out.failure_text(),
            });
        }
    }
    Ok(Outcome::Done)
}
