//! `final_message` (every run) and `power_state_change` (per instance), the last modules.

use egs_cloudconfig::schema::{Condition, PowerMode};

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Command;
use crate::state::Frequency;
use crate::system::PowerAction;

/// `final_message`.
pub const FINAL_MESSAGE: Module = Module {
    name: "final_message",
    stage: Stage::Final,
    frequency: Frequency::Always,
    run: final_message,
};
/// `power_state_change`.
pub const POWER_STATE_CHANGE: Module = Module {
    name: "power_state_change",
    stage: Stage::Final,
    frequency: Frequency::PerInstance,
    run: power_state_change,
};

fn final_message(ctx: &mut Context) -> ModuleResult {
    let template = ctx.config.final_message.clone().unwrap_or_else(|| {
        "EGS finished provisioning instance $INSTANCE_ID (datasource $DATASOURCE)".into()
    });
    let message = template
        .replace("$INSTANCE_ID", ctx.instance_id)
        .replace("$DATASOURCE", &ctx.datasource.source)
        .replace("$VERSION", env!("CARGO_PKG_VERSION"));
    ctx.log.push(message);
    Ok(Outcome::Done)
}

fn power_state_change(ctx: &mut Context) -> ModuleResult {
    let Some(power) = ctx.config.power_state.clone() else {
        return Ok(Outcome::NothingToDo);
    };
    let go = match &power.condition {
        Condition::Fixed(b) => *b,
        Condition::Command(c) => {
            let script = super::commands::shellify(std::slice::from_ref(c));
            ctx.system
                .execute(&Command::new(["/bin/sh", "-c", &script]))
                .is_ok_and(|o| o.success())
        }
    };
    if !go {
        ctx.log.push("power_state: condition not met".into());
        return Ok(Outcome::NothingToDo);
    }
    let action = match power.mode {
        PowerMode::Reboot => PowerAction::Reboot,
        PowerMode::Poweroff => PowerAction::Poweroff,
        PowerMode::Halt => PowerAction::Halt,
    };
    ctx.system
        .power(action, power.delay_minutes, power.message.as_deref())?;
    Ok(Outcome::Done)
}
