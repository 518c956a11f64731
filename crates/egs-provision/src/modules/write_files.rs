//! `write_files` (network stage, per instance) and `write_files_deferred` (final stage, per
//! instance, after users exist): content decoded by the model, mode applied after `chown`
//! so setuid bits survive, `append` adds to an existing file, default owner `root:root`.

use egs_cloudconfig::schema::WriteFile;

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::state::Frequency;

/// `write_files`.
pub const WRITE_FILES: Module = Module {
    name: "write_files",
    stage: Stage::Network,
    frequency: Frequency::PerInstance,
    run: |ctx| write(ctx, false),
};

/// `write_files_deferred`.
pub const WRITE_FILES_DEFERRED: Module = Module {
    name: "write_files_deferred",
    stage: Stage::Final,
    frequency: Frequency::PerInstance,
    run: |ctx| write(ctx, true),
};

fn write(ctx: &mut Context, deferred: bool) -> ModuleResult {
    let files: Vec<&WriteFile> = ctx
        .config
        .write_files
        .iter()
        .filter(|f| f.defer == deferred)
        .collect();
    if files.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    for file in files {
        let owner = ctx.system.resolve_owner(&file.owner)?;
        let mut content = Vec::new();
        if file.append {
            content = ctx.system.read_file(&file.path)?.unwrap_or_default();
        }
        content.extend_from_slice(&file.content);
        let path = ctx
            .system
            .write_file(&file.path, &content, file.permissions, Some(owner))?;
        ctx.log.push(format!(
            "wrote {} ({} bytes, mode {:04o}, owner {})",
            path.display(),
            content.len(),
            file.permissions,
            file.owner
        ));
    }
    Ok(Outcome::Done)
}
