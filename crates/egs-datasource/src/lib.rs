//! Datasources: where a VM's instance id, metadata and user-data come from.

pub mod media;
