//! `egs-service kvp …`: look at and change the Hyper-V KVP pools from inside the guest.
//! Exit status: 0 done, 1 key not found, 2 error (no pool, limits, bad arguments).

use std::process::ExitCode;

use egs_kvp::decode::decode_events;
use egs_kvp::record::Record;
use egs_kvp::store::{KvpError, KvpStore, PoolId};
use serde_json::json;

const OK: u8 = 0;
const NOT_FOUND: u8 = 1;
const FAILED: u8 = 2;

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum KvpCommand {
    /// List the records of a pool.
    List {
        /// Pool number (0 host→guest, 1 guest→host, 2 intrinsic).
        #[arg(long, default_value = "1", value_parser = parse_pool)]
        pool: PoolId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the value of a key (exit 1 when absent).
    Get {
        /// The key.
        key: String,
        /// Pool number.
        #[arg(long, default_value = "1", value_parser = parse_pool)]
        pool: PoolId,
    },
    /// Set a key (key ≤ 254 bytes, value ≤ 1022 bytes).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Pool number.
        #[arg(long, default_value = "1", value_parser = parse_pool)]
        pool: PoolId,
    },
    /// Delete a key (exit 1 when absent).
    Delete {
        /// The key.
        key: String,
        /// Pool number.
        #[arg(long, default_value = "1", value_parser = parse_pool)]
        pool: PoolId,
    },
    /// Show the cloud-init event stream (`CLOUD_INIT|…` records), reassembled and in order.
    Events {
        /// Pool number.
        #[arg(long, default_value = "1", value_parser = parse_pool)]
        pool: PoolId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_pool(text: &str) -> Result<PoolId, String> {
    text.parse::<u8>()
        .ok()
        .and_then(PoolId::from_number)
        .ok_or_else(|| format!("'{text}' is not a KVP pool number (0 to 4)"))
}

/// Runs a `kvp` command against the guest's KVP store.
pub fn run(store: &dyn KvpStore, command: KvpCommand) -> ExitCode {
    match execute(store, command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("egs-service kvp: {e}");
            ExitCode::from(FAILED)
        }
    }
}

fn read(store: &dyn KvpStore, pool: PoolId) -> Result<Vec<Record>, KvpError> {
    let listing = store.list(pool)?;
    for p in listing.problems {
        eprintln!("warning: {}: {p}", store.location(pool));
    }
    Ok(listing.records)
}

fn execute(store: &dyn KvpStore, command: KvpCommand) -> Result<u8, KvpError> {
    match command {
        KvpCommand::List { pool, json } => {
            let records = read(store, pool)?;
            if json {
                let list: Vec<_> = records
                    .iter()
                    .map(|r| json!({"index": r.index, "key": r.key, "value": r.value}))
                    .collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for r in records {
                    println!("{}={}", r.key, r.value);
                }
            }
            Ok(OK)
        }
        KvpCommand::Get { key, pool } => match store.get(pool, &key)? {
            Some(value) => {
                println!("{value}");
                Ok(OK)
            }
            None => Ok(NOT_FOUND),
        },
        KvpCommand::Set { key, value, pool } => {
            store.set(pool, &key, &value)?;
            Ok(OK)
        }
        KvpCommand::Delete { key, pool } => Ok(if store.delete(pool, &key)? {
            OK
        } else {
            NOT_FOUND
        }),
        KvpCommand::Events { pool, json } => {
            let records = read(store, pool)?;
            let (events, problems) = decode_events(&records);
            for p in problems {
                eprintln!("warning: {p}");
            }
            if json {
                let list: Vec<_> = events
                    .iter()
                    .map(|e| {
                        json!({
                            "incarnation": e.incarnation,
                            "timestamp": e.timestamp,
                            "type": e.event_type,
                            "name": e.name,
                            "stage": e.stage(),
                            "module": e.module(),
                            "result": e.result,
                            "duration": e.duration,
                            "message": e.message,
                            "uuid": e.uuid,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for e in events {
                    let result = e.result.as_deref().unwrap_or("");
                    let message = e
                        .message
                        .replace('\\', "\\\\")
                        .replace('\n', "\\n")
                        .replace('\r', "\\r")
                        .replace('\t', "\\t");
                    println!(
                        "{}  {:<6} {:<7} {}  {message}",
                        e.timestamp, e.event_type, result, e.name
                    );
                }
            }
            Ok(OK)
        }
    }
}
