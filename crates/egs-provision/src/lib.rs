//! The provisioning agent's core: the stage runner, the modules (one per cloud-init module)
//! and the state they keep, acting on the system through [`system::System`], which is the
//! running machine or a sandbox root.

pub mod bridge;
pub mod command;
pub mod maintenance;
pub mod modules;
pub mod runner;
pub mod settings;
pub mod state;
pub mod system;
