//! Provisioning modules, one file per cloud-init module and named after it. Each declares
//! its stage and frequency beside its code; [`all`] lists them in cloud-init's order
//! (Debian's `cloud.cfg`).

mod commands;

pub use commands::MAX_REBOOTS;
mod final_message;
mod growpart;
mod hostname;
mod network;
mod ssh;
pub(crate) mod users_groups;
mod write_files;

use egs_cloudconfig::schema::{CloudConfig, User};
use egs_datasource::DataSourceResult;
use egs_userdata::pipeline::UserData;
use serde::{Deserialize, Serialize};

use crate::state::Frequency;
use crate::system::{System, SystemError};

/// The four stages, in order; recorded in `state.json` by cloud-init's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// Before networking.
    #[serde(rename = "init-local")]
    Local,
    /// After networking: identity, users, keys, files.
    #[serde(rename = "init-network")]
    Network,
    /// Configuration: passwords, time zone, runcmd.
    #[serde(rename = "modules-config")]
    Config,
    /// Last: scripts, final message, power state.
    #[serde(rename = "modules-final")]
    Final,
}

impl Stage {
    /// All stages in order.
    pub const ALL: [Stage; 4] = [Stage::Local, Stage::Network, Stage::Config, Stage::Final];

    /// cloud-init's name, used in events and `--stage`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Local => "init-local",
            Stage::Network => "init-network",
            Stage::Config => "modules-config",
            Stage::Final => "modules-final",
        }
    }

    /// The stage called `name` (cloud-init's names, or `local`/`network`/`config`/`final`).
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| {
            s.name() == name
                || s.name().ends_with(&format!("-{name}"))
                || (name == "local" && *s == Stage::Local)
        })
    }
}

/// What a module needs.
pub struct Context<'a> {
    /// The system to change.
    pub system: &'a dyn System,
    /// The merged cloud-config.
    pub config: &'a CloudConfig,
    /// The processed user-data (parts, for scripts and boothooks).
    pub user_data: &'a UserData,
    /// The datasource's findings.
    pub datasource: &'a DataSourceResult,
    /// This instance.
    pub instance_id: &'a str,
    /// The distribution's default user (what `default` in `users` means).
    pub default_user: &'a User,
    /// This boot's id.
    pub boot_id: &'a str,
    /// Lines for the provisioning log (never secrets).
    pub log: Vec<String>,
}

/// What a module did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// Nothing to do (e.g. the key is absent).
    NothingToDo,
    /// A script asked for a reboot; `again` means run it again after the reboot.
    Reboot {
        /// Run the same script again after rebooting (exit code 1003).
        again: bool,
    },
}

/// Why a module failed.
pub type ModuleResult = Result<Outcome, SystemError>;

/// One module.
pub struct Module {
    /// cloud-init's name (`users_groups`, …); semaphores are `config_<name>`.
    pub name: &'static str,
    /// When it runs.
    pub stage: Stage,
    /// How often.
    pub frequency: Frequency,
    /// What it does.
    pub run: fn(&mut Context) -> ModuleResult,
}

/// All modules in order.
pub fn all() -> Vec<Module> {
    vec![
        network::APPLY_NETWORK_CONFIG,
        commands::BOOTCMD,
        write_files::WRITE_FILES,
        growpart::GROWPART,
        growpart::RESIZEFS,
        hostname::SET_HOSTNAME,
        hostname::UPDATE_HOSTNAME,
        hostname::UPDATE_ETC_HOSTS,
        users_groups::USERS_GROUPS,
        ssh::SSH,
        users_groups::SET_PASSWORDS,
        hostname::TIMEZONE,
        commands::RUNCMD,
        write_files::WRITE_FILES_DEFERRED,
        commands::SCRIPTS_PER_ONCE,
        commands::SCRIPTS_PER_BOOT,
        commands::SCRIPTS_PER_INSTANCE,
        commands::SCRIPTS_USER,
        final_message::FINAL_MESSAGE,
        final_message::POWER_STATE_CHANGE,
    ]
}
