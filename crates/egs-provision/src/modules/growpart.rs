//! `growpart` and `resizefs` (network stage, every run): grow the partition under `/` (or
//! the configured devices) to fill its disk, then the file system on it, as cloud-init
//! does with cloud-utils' `growpart` and `resize2fs`/`xfs_growfs`/`btrfs`. The device of a
//! mount point comes from `/proc/self/mountinfo` and `/sys/dev/block/<major:minor>`, which
//! also resolves `/dev/root`. Skipped when the tools are missing, when
//! `/etc/growroot-disabled` exists (unless `ignore_growroot_disabled`), or with
//! `mode: off`. In a sandbox the commands are recorded, not run: its disks are not real.

use egs_cloudconfig::schema::ResizeRootfs;

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Output;
use crate::state::Frequency;
use crate::system::{DiskChange, SystemError};

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
    Ok(system.block_device(&major_minor)?.map(|block| Mounted {
        device: format!("/dev/{}", block.name),
        disk: block.disk,
        partition: block.partition,
        fstype,
    }))
}

/// Runs a disk command (a sandbox records it) and logs what happened.
fn act(ctx: &mut Context, argv: Vec<String>) -> Result<DiskChange, SystemError> {
    let line = argv.join(" ");
    let change = ctx.system.change_disk(&argv)?;
    ctx.log.push(match &change {
        DiskChange::Ran(out) => format!("{line}: exit status {:?}", out.code),
        DiskChange::Recorded => format!("recorded (sandbox): {line}"),
        DiskChange::NotInstalled => format!("{} is not installed: not run", argv[0]),
    });
    Ok(change)
}

fn failed(argv: &[String], out: &Output) -> SystemError {
    SystemError::Command {
        command: argv.join(" "),
        message: out.failure_text(),
    }
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
        let argv = vec!["growpart".into(), disk.clone(), partition.to_string()];
        match act(ctx, argv.clone())? {
            DiskChange::Ran(out)
                if !out.success() && !String::from_utf8_lossy(&out.stdout).contains("NOCHANGE") =>
            {
                return Err(failed(&argv, &out));
            }
            DiskChange::NotInstalled => return Ok(Outcome::NothingToDo),
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
    match act(ctx, argv.clone())? {
        DiskChange::Ran(out) if !out.success() => Err(failed(&argv, &out)),
        DiskChange::NotInstalled => Ok(Outcome::NothingToDo),
        _ => Ok(Outcome::Done),
    }
}
