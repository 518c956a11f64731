//! Commands and scripts: `bootcmd` (every boot, before the rest), `runcmd` (written as a
//! script, run by `scripts_user`), user-data scripts, and the `scripts/per-boot`,
//! `per-instance` and `per-once` directories. Scripts run with their shebang (or `/bin/sh`),
//! with `INSTANCE_ID` and `EGS_ROOT` in the environment, and log to a 0600 file each. In a
//! sandbox root that is a whole system (it has `/bin/sh`) they run inside it via `chroot`
//! (`EGS_ROOT=/`); in a bare sandbox they run on the host with `EGS_ROOT` set to the root.
//! Exit status 1001 asks for a reboot after the script; 1003 asks for a reboot and to run
//! the script again (on Linux they arrive as 233 and 235); 1003 at most
//! [`MAX_REBOOTS_PER_SCRIPT`] times per script unless the script raises its limit with
//! `##egs.reboot_limit=<n>` ([`reboot_limit_directive`]), all reboots [`MAX_REBOOTS`] per
//! instance. Scripts see `EGS_REBOOT_COUNT` and `EGS_REBOOT_LIMIT`.
//! On Windows each `runcmd` entry is a script of its own (`runcmd-001.cmd`, …), so these
//! codes act per entry as in the original; 1002 is a warning.

use std::path::{Path, PathBuf};

use egs_cloudconfig::schema::Command as ConfigCommand;
use egs_userdata::pipeline::{PartKind, ScriptFrequency};

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::state::{create_private_dir, Frequency};
use crate::system::SystemError;

/// `bootcmd`.
pub const BOOTCMD: Module = Module {
    name: "bootcmd",
    stage: Stage::Network,
    frequency: Frequency::Always,
    run: bootcmd,
};
/// `runcmd`.
pub const RUNCMD: Module = Module {
    name: "runcmd",
    stage: Stage::Config,
    frequency: Frequency::PerInstance,
    run: runcmd,
};
/// `scripts_per_once`.
pub const SCRIPTS_PER_ONCE: Module = Module {
    name: "scripts_per_once",
    stage: Stage::Final,
    frequency: Frequency::Once,
    run: |ctx| run_dir(ctx, "per-once"),
};
/// `scripts_per_boot`.
pub const SCRIPTS_PER_BOOT: Module = Module {
    name: "scripts_per_boot",
    stage: Stage::Final,
    frequency: Frequency::Always,
    run: |ctx| run_dir(ctx, "per-boot"),
};
/// `scripts_per_instance`.
pub const SCRIPTS_PER_INSTANCE: Module = Module {
    name: "scripts_per_instance",
    stage: Stage::Final,
    frequency: Frequency::PerInstance,
    run: |ctx| run_dir(ctx, "per-instance"),
};
/// `scripts_user`: user-data scripts and runcmd.
pub const SCRIPTS_USER: Module = Module {
    name: "scripts_user",
    stage: Stage::Final,
    frequency: Frequency::PerInstance,
    run: scripts_user,
};

/// Reboots one script (or Windows runcmd entry) may ask for with exit 1003 per instance,
/// the original's `reboot.maxPerScript`.
pub const MAX_REBOOTS_PER_SCRIPT: u32 = 10;

/// Reboots per instance in all, whoever asks: a safety net against a reboot loop that
/// no per-script count sees.
pub const MAX_REBOOTS: u32 = 100;

/// cloud-init's `shellify`: list entries quoted word by word, strings as they are.
pub fn shellify(commands: &[ConfigCommand]) -> String {
    let mut script = String::from("#!/bin/sh\n");
    for c in commands {
        match c {
            ConfigCommand::Shell(s) => script.push_str(s),
            ConfigCommand::Argv(argv) => {
                let quoted: Vec<String> = argv
                    .iter()
                    .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
                    .collect();
                script.push_str(&quoted.join(" "));
            }
        }
        script.push('\n');
    }
    script
}

fn bootcmd(ctx: &mut Context) -> ModuleResult {
    let instance = ctx.system.layout().instance(ctx.instance_id);
    // Boothooks run every boot with INSTANCE_ID, like cloud-init's boothook handler.
    for (i, part) in ctx
        .user_data
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind() == PartKind::Boothook)
    {
        let body = String::from_utf8_lossy(&part.payload);
        let body = body
            .strip_prefix("#cloud-boothook")
            .map(|b| b.trim_start_matches(['\r', '\n']))
            .unwrap_or(&body)
            .to_string();
        let name = staged_name(ctx, &format!("{:02}-{}", i, part.filename), body.as_bytes());
        let path = write_script(&instance.join("boothooks"), &name, body.as_bytes())?;
        execute(ctx, &path, "boothook", &[])?;
    }
    if ctx.config.bootcmd.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    let (name, body) = if ctx.system.is_windows() {
        ("bootcmd.cmd", cmdify(&ctx.config.bootcmd))
    } else {
        ("bootcmd", shellify(&ctx.config.bootcmd))
    };
    let path = write_script(&instance.join("scripts-bootcmd"), name, body.as_bytes())?;
    match execute(ctx, &path, "bootcmd", &[])?.code {
        Some(code) if code != 0 => Err(SystemError::Command {
            command: "bootcmd".into(),
            message: format!("exit status {code}"),
        }),
        _ => Ok(Outcome::Done),
    }
}

fn runcmd(ctx: &mut Context) -> ModuleResult {
    if ctx.config.runcmd.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    let dir = ctx
        .system
        .layout()
        .instance(ctx.instance_id)
        .join("scripts");
    if ctx.system.is_windows() {
        // One file per entry, as the original runs entries one by one: a reboot request
        // (1001, 1003) resumes at the entry, not at the first one.
        for (i, entry) in ctx.config.runcmd.iter().enumerate() {
            let name = format!("runcmd-{:03}.cmd", i + 1);
            write_script(&dir, &name, cmdify(std::slice::from_ref(entry)).as_bytes())?;
        }
    } else {
        write_script(&dir, "runcmd", shellify(&ctx.config.runcmd).as_bytes())?;
    }
    Ok(Outcome::Done)
}

/// Commands as a `cmd.exe` batch file (`original-provisioning.md` §5.4): UTF-8 code page,
/// strings as they are, list entries as one command line quoted as Windows programs split
/// it. CRLF. `bootcmd` is one such file; each `runcmd` entry is one of its own. `(call )`
/// sets ERRORLEVEL back to 0 after `chcp`, so that the file's exit status is its commands'
/// (a `chcp` that fails, as Wine's does for 65001, would otherwise become it).
pub fn cmdify(commands: &[ConfigCommand]) -> String {
    let mut lines = vec![
        "@echo off".to_string(),
        "chcp 65001 >nul".to_string(),
        "(call )".to_string(),
    ];
    for c in commands {
        lines.push(match c {
            ConfigCommand::Shell(s) => s.clone(),
            ConfigCommand::Argv(argv) => match egs_sys::win_args::command_line(argv) {
                Ok(line) => batch_escape(&line),
                Err(e) => format!("rem a runcmd entry was skipped: {e}"),
            },
        });
    }
    lines.push(String::new());
    lines.join("\r\n")
}

/// A command line as a batch file line that runs exactly it: `%` doubled everywhere, and
/// outside double quotes cmd's operators (`& | < > ^ ( )`) escaped with `^`, so a list
/// entry's words reach the program as given and never start another command.
fn batch_escape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '%' => out.push('%'),
            '&' | '|' | '<' | '>' | '^' | '(' | ')' if !quoted => out.push('^'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// The name a user-data script is staged under: its own, or on Windows one whose
/// extension says how it runs ([`windows_script_name`]).
fn staged_name(ctx: &Context, filename: &str, body: &[u8]) -> String {
    if ctx.system.is_windows() {
        windows_script_name(filename, body)
    } else {
        filename.to_string()
    }
}

/// The name a script is staged under on Windows, where the extension decides how it runs
/// (`original-provisioning.md` §5.3, filename first): `.ps1`, `.cmd` and `.bat` keep
/// theirs; otherwise a first line `#ps1` or `#ps1_sysnative` makes it PowerShell, a `#!`
/// line a POSIX script (not run on Windows), anything else runs through `cmd.exe`.
pub fn windows_script_name(filename: &str, body: &[u8]) -> String {
    let lower = filename.to_ascii_lowercase();
    if [".ps1", ".cmd", ".bat", POSIX_SCRIPT]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return filename.to_string();
    }
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let first = body
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).trim().to_ascii_lowercase())
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if first == "#ps1" || first == "#ps1_sysnative" || first == "#ps1_x86" {
        format!("{filename}.ps1")
    } else if first.starts_with("#!") {
        format!("{filename}{POSIX_SCRIPT}")
    } else {
        format!("{filename}.cmd")
    }
}

/// The extension of a script for a POSIX shell (a `.sh` file name or a `#!` first line):
/// Windows has no interpreter for it, so it is not run there, with a warning (as the
/// original does; cloudbase-init ignored the shebang and ran it as something else).
const POSIX_SCRIPT: &str = ".sh";

fn write_script(dir: &Path, name: &str, body: &[u8]) -> Result<PathBuf, SystemError> {
    let path = dir.join(name.replace(['/', '\0'], "_"));
    write_private(&path, body, 0o700)?;
    Ok(path)
}

/// Writes a file atomically with `mode`, creating its directory readable only by root.
fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), SystemError> {
    let failed = |at: &Path, source: std::io::Error| SystemError::Io {
        path: at.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| failed(dir, e))?;
    }
    egs_sys::fs::write_atomic(path, contents, mode).map_err(|e| failed(path, e))
}

/// What a script did: its exit status (`None` when it was killed) and its standard output.
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
}

/// Runs one script with `env` added to its environment; its output goes to
/// `<logs>/scripts/<name>.log` (0600).
fn execute(
    ctx: &mut Context,
    script: &Path,
    what: &str,
    env: &[(&str, String)],
) -> Result<Ran, SystemError> {
    let head = std::fs::read(script).map_err(|source| SystemError::Io {
        path: script.to_path_buf(),
        source,
    })?;
    let path = script.display().to_string();
    let mut command = ctx
        .system
        .script_command(script, head.starts_with(b"#!"))
        .env("INSTANCE_ID", ctx.instance_id);
    for (key, value) in env {
        command = command.env(key, value);
    }
    command.cwd = Some(ctx.system.layout().root.clone());
    let out = ctx.system.execute(&command)?;
    let log_dir = ctx.system.layout().logs.join("scripts");
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let log = log_dir.join(format!("{what}-{name}.log"));
    let mut text = format!("# {what} {path}: exit status {:?}\n", out.code).into_bytes();
    text.extend_from_slice(&out.stdout);
    text.extend_from_slice(&out.stderr);
    write_private(&log, &text, 0o600)?;
    ctx.log
        .push(format!("{what} {name}: exit status {:?}", out.code));
    Ok(Ran {
        code: out.code,
        stdout: out.stdout,
    })
}

/// Runs scripts in name order, each once per marker directory; stops at a reboot request.
fn run_scripts(
    ctx: &mut Context,
    scripts: Vec<PathBuf>,
    done_dir: &Path,
    what: &str,
) -> ModuleResult {
    let mut failed = Vec::new();
    for script in scripts {
        let name = script
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let marker = done_dir.join(&name);
        if marker.exists() {
            continue;
        }
        if ctx.system.is_windows() && name.to_ascii_lowercase().ends_with(POSIX_SCRIPT) {
            ctx.log.push(format!(
                "warning: {name} is a POSIX shell script (a .sh name or a #! line); \
                 Windows has no shell for it, so it is not run"
            ));
            mark(&marker)?;
            continue;
        }
        let reboots = done_dir.join(format!("{name}.reboots"));
        let raised_limit = done_dir.join(format!("{name}.reboot-limit"));
        let reboot_count = read_number(&reboots).unwrap_or(0);
        let mut limit = read_number(&raised_limit).unwrap_or(MAX_REBOOTS_PER_SCRIPT);
        let env = [
            ("EGS_REBOOT_COUNT", reboot_count.to_string()),
            ("EGS_REBOOT_LIMIT", limit.to_string()),
        ];
        let ran = execute(ctx, &script, what, &env)?;
        match ran.code {
            Some(0) => {}
            Some(c) if reboot_request(c) == Some(false) => {
                mark(&marker)?;
                return Ok(Outcome::Reboot { again: false });
            }
            Some(c) if reboot_request(c) == Some(true) => {
                match reboot_limit_directive(&ran.stdout) {
                    Some(asked) if asked > limit => {
                        write_private(&raised_limit, asked.to_string().as_bytes(), 0o600)?;
                        ctx.log.push(format!(
                            "{name} raised its reboot limit from {limit} to {asked}"
                        ));
                        limit = asked;
                    }
                    Some(asked) if asked < limit => ctx.log.push(format!(
                        "warning: {name} asked for a reboot limit of {asked}, below its \
                         limit of {limit}; a limit can only be raised, so it stays {limit}"
                    )),
                    _ => {}
                }
                let attempts = reboot_count + 1;
                write_private(&reboots, attempts.to_string().as_bytes(), 0o600)?;
                if attempts <= limit {
                    return Ok(Outcome::Reboot { again: true });
                }
                failed.push(format!(
                    "{name} exceeded the per-script reboot limit ({attempts}/{limit})"
                ));
            }
            Some(RUN_AGAIN_NEXT_BOOT) => ctx.log.push(format!(
                "warning: {name} exited {RUN_AGAIN_NEXT_BOOT} (run again at the next boot \
                 without a reboot), which is not supported; it counts as done"
            )),
            other => failed.push(format!(
                "{name} ({})",
                other.map_or("killed".to_string(), |c| format!("exit status {c}"))
            )),
        }
        mark(&marker)?;
    }
    if failed.is_empty() {
        Ok(Outcome::Done)
    } else {
        Err(SystemError::Command {
            command: what.to_string(),
            message: format!("failed: {}", failed.join(", ")),
        })
    }
}

/// cloudbase-init's "run again at the next boot, no reboot", which the original does not
/// implement either: a warning, and the script counts as done.
const RUN_AGAIN_NEXT_BOOT: i32 = 1002;

/// Whether an exit status asks for a reboot, and whether to run the script again after it:
/// 1001 (reboot) and 1003 (reboot, run again), as the original EGS and cloudbase-init
/// define them. Linux keeps only 8 bits of an exit status, so `exit 1001` arrives as 233
/// and `exit 1003` as 235; both forms count.
pub fn reboot_request(code: i32) -> Option<bool> {
    match code {
        1001 | 233 => Some(false),
        1003 | 235 => Some(true),
        _ => None,
    }
}

/// The original's `##egs.reboot_limit=<n>` directive: a script that exits 1003 may raise
/// its own per-script reboot limit by printing such a line on its standard output (spaces
/// allowed around the line and the `=`; the last valid positive value counts; standard
/// error is not read).
pub fn reboot_limit_directive(stdout: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let value = line
                .trim()
                .strip_prefix("##egs.reboot_limit")?
                .trim_start()
                .strip_prefix('=')?
                .trim_start();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            value.parse::<u32>().ok().filter(|&n| n > 0)
        })
        .next_back()
}

/// A number kept in a file of its own (a script's reboot count or raised limit).
fn read_number(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn mark(marker: &Path) -> Result<(), SystemError> {
    write_private(marker, b"", 0o600)
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn scripts_user(ctx: &mut Context) -> ModuleResult {
    let instance = ctx.system.layout().instance(ctx.instance_id);
    let dir = instance.join("scripts");
    for part in ctx
        .user_data
        .parts
        .iter()
        .filter(|p| matches!(p.kind(), PartKind::Script(ScriptFrequency::Instance)))
    {
        let name = staged_name(ctx, &part.filename, &part.payload);
        let path = dir.join(name.replace(['/', '\0'], "_"));
        if !path.exists() {
            write_script(&dir, &name, &part.payload)?;
        }
    }
    let scripts = sorted_files(&dir);
    if scripts.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    run_scripts(ctx, scripts, &instance.join("scripts-done"), "scripts_user")
}

fn run_dir(ctx: &mut Context, kind: &str) -> ModuleResult {
    let frequency = match kind {
        "per-boot" => ScriptFrequency::Boot,
        "per-once" => ScriptFrequency::Once,
        _ => ScriptFrequency::PerInstance,
    };
    let dir = ctx.system.layout().state.join("scripts").join(kind);
    for part in ctx
        .user_data
        .parts
        .iter()
        .filter(|p| p.kind() == PartKind::Script(frequency))
    {
        let name = staged_name(ctx, &part.filename, &part.payload);
        write_script(&dir, &name, &part.payload)?;
    }
    let scripts = sorted_files(&dir);
    if scripts.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    let done = match kind {
        "per-boot" => ctx
            .system
            .layout()
            .state
            .join("scripts-done")
            .join(format!("boot-{}", ctx.boot_id)),
        "per-once" => ctx.system.layout().state.join("scripts-done").join("once"),
        _ => ctx
            .system
            .layout()
            .instance(ctx.instance_id)
            .join("scripts-done-per-instance"),
    };
    run_scripts(
        ctx,
        scripts,
        &done,
        &format!("scripts_{}", kind.replace('-', "_")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original's rule: `##egs.reboot_limit=<n>` on a line of its own (spaces around
    /// the line and the `=`), ASCII digits, positive; the last valid one counts.
    #[test]
    fn reboot_limit_directive_as_the_original_reads_it() {
        let read = |s: &str| reboot_limit_directive(s.as_bytes());
        assert_eq!(read("##egs.reboot_limit=12\n"), Some(12));
        assert_eq!(read("  ##egs.reboot_limit = 15 \r\n"), Some(15));
        assert_eq!(
            read("##egs.reboot_limit=3\nwork\n##egs.reboot_limit=20\n"),
            Some(20)
        );
        assert_eq!(
            read("##egs.reboot_limit=20\n##egs.reboot_limit=0\n"),
            Some(20)
        );
        assert_eq!(
            read("##egs.reboot_limit=20\n##egs.reboot_limit=x\n"),
            Some(20)
        );
        for ignored in [
            "",
            "##egs.reboot_limit=\n",
            "##egs.reboot_limit=-4\n",
            "##egs.reboot_limit=+4\n",
            "##egs.reboot_limit=4 more\n",
            "##egs.reboot_limit=99999999999\n",
            "echo ##egs.reboot_limit=4\n",
            "##egs.reboot_limits=4\n",
            "##EGS.REBOOT_LIMIT=4\n",
        ] {
            assert_eq!(read(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn runcmd_for_cmd_exe() {
        let s = cmdify(&[
            ConfigCommand::Shell(
                r#"powershell -NoProfile -Command "Write-Host provisioned""#.into(),
            ),
            ConfigCommand::Argv(vec![
                r"C:\Program Files\x.exe".into(),
                "a b".into(),
                "c&d".into(),
                "50%".into(),
            ]),
        ]);
        assert_eq!(
            s,
            "@echo off\r\nchcp 65001 >nul\r\n(call )\r\n\
             powershell -NoProfile -Command \"Write-Host provisioned\"\r\n\
             \"C:\\Program Files\\x.exe\" \"a b\" c^&d 50%%\r\n"
        );
    }

    /// The cloudbase-init bugs the seed names: a part without `filename=` or with a
    /// shebang-less body still runs by its name or first line.
    #[test]
    fn windows_scripts_are_named_for_how_they_run() {
        assert_eq!(
            windows_script_name("enable_rd.ps1", b"Set-Item x"),
            "enable_rd.ps1"
        );
        assert_eq!(windows_script_name("setup.CMD", b"echo"), "setup.CMD");
        assert_eq!(
            windows_script_name("part-001", b"\xef\xbb\xbf\r\n#ps1_sysnative\r\nWrite-Host"),
            "part-001.ps1"
        );
        assert_eq!(windows_script_name("part-002", b"#ps1\nx"), "part-002.ps1");
        assert_eq!(windows_script_name("part-003", b"echo hi"), "part-003.cmd");
        // A shebang is not ignored: the script is named for a POSIX shell and not run.
        assert_eq!(
            windows_script_name("part-004", b"#!/bin/bash\necho"),
            "part-004.sh"
        );
        assert_eq!(windows_script_name("setup.sh", b"echo"), "setup.sh");
    }

    #[test]
    fn shellify_like_cloud_init() {
        let s = shellify(&[
            ConfigCommand::Shell("echo a > /tmp/x".into()),
            ConfigCommand::Argv(vec!["echo".into(), "it's".into()]),
        ]);
        assert_eq!(s, "#!/bin/sh\necho a > /tmp/x\n'echo' 'it'\\''s'\n");
    }
}
