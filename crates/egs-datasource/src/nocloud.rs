//! NoCloud, as cloud-init's `DataSourceNoCloud` finds it: `ds=nocloud[;key=value…]` in the
//! SMBIOS serial or on the kernel command line (`s=`/`seedfrom`, `i=`/`instance-id`,
//! `h=`/`local-hostname`), the seed directories `/var/lib/cloud/seed/nocloud[-net]`, and a
//! volume labelled `cidata` (any case; ISO9660 or FAT). Metadata layers merge with the
//! earlier one winning (SMBIOS, command line, seed directory or volume); a `seedfrom`
//! (directory, `file://`, `http://`, `https://`) then supplies user-data, vendor-data and
//! network-config and fills metadata gaps.

use egs_cloudconfig::merge::{Strategy, CONFIG_DEFAULT};
use egs_cloudconfig::value::{Mapping, Node, Value};
use egs_userdata::fetch::{FetchError, Fetcher};

use crate::env::Environment;
use crate::media::Volume;
use crate::{normalize_public_keys, parse_meta_data, DataSource, DataSourceResult, Probe};

/// Volume labels NoCloud looks for.
pub const LABELS: &[&str] = &["cidata"];
/// Seed directories, in order.
pub const SEED_DIRS: &[&str] = &[
    "/var/lib/cloud/seed/nocloud",
    "/var/lib/cloud/seed/nocloud-net",
];

/// The NoCloud datasource.
pub struct NoCloud {
    fetcher: Box<dyn Fetcher>,
}

impl NoCloud {
    /// NoCloud fetching `seedfrom` URLs with `fetcher`.
    pub fn new(fetcher: Box<dyn Fetcher>) -> Self {
        Self { fetcher }
    }
}

/// The `key=value` pairs of `ds=nocloud[-net][;…]` in `line`, if the token is there.
pub fn parse_ds_argument(line: &str) -> Option<Mapping> {
    let token = line.split_whitespace().find(|t| {
        let rest = t
            .strip_prefix("ds=nocloud")
            .map(|r| r.strip_prefix("-net").unwrap_or(r));
        rest.is_some_and(|r| r.is_empty() || r.starts_with(';'))
    })?;
    let mut map = Mapping::new();
    for item in token.split(';').skip(1).filter(|i| !i.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Value::Str(v.to_string())),
            None => (item, Value::Null),
        };
        let key = match key {
            "h" => "local-hostname",
            "i" => "instance-id",
            "s" => "seedfrom",
            other => other,
        };
        map.insert_str(key, Node::detached(value));
    }
    Some(map)
}

/// Files of one seed.
#[derive(Default)]
struct Seed {
    meta_data: Option<Mapping>,
    user_data: Option<Vec<u8>>,
    vendor_data: Option<Vec<u8>>,
    network_config: Option<Vec<u8>>,
}

fn read_volume(volume: &mut Volume) -> Result<Option<Seed>, String> {
    let location = volume.path().display().to_string();
    let read = |v: &mut Volume, f: &str| v.read(f).map_err(|e| e.to_string());
    let Some(meta) = read(volume, "meta-data")? else {
        return Ok(None);
    };
    Ok(Some(Seed {
        meta_data: Some(parse_meta_data(&meta, &location)?),
        user_data: read(volume, "user-data")?,
        vendor_data: read(volume, "vendor-data")?,
        network_config: read(volume, "network-config")?,
    }))
}

/// Merges metadata layers; the earlier value wins, nested mappings merge (cloud-init's
/// `mergemanydict`).
fn merge_under(upper: Mapping, lower: &Mapping) -> Mapping {
    let strategy = Strategy::parse(CONFIG_DEFAULT).expect("built-in strategy parses");
    let upper = Node::detached(Value::Map(upper));
    match strategy.merge(&upper, &Node::detached(Value::Map(lower.clone()))) {
        Ok(Node {
            value: Value::Map(m),
            ..
        }) => m,
        _ => match upper.value {
            Value::Map(m) => m,
            _ => unreachable!("built from a mapping"),
        },
    }
}

/// Puts a seed's metadata under what is known so far and takes its files.
fn layer(meta: Mapping, seed: Seed) -> (Mapping, Seed) {
    let merged = merge_under(meta, seed.meta_data.as_ref().unwrap_or(&Mapping::new()));
    (
        merged,
        Seed {
            meta_data: None,
            ..seed
        },
    )
}

impl NoCloud {
    fn seedfrom(&self, env: &dyn Environment, base: &str) -> Result<Seed, String> {
        let base = base.trim();
        if let Some(dir) = base
            .strip_prefix("file://")
            .or_else(|| base.starts_with('/').then_some(base))
        {
            let mut volume = Volume::directory(&env.path(dir));
            return read_volume(&mut volume)?
                .ok_or_else(|| format!("seedfrom {base}: no meta-data there"));
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "seedfrom {base}: unsupported (use a directory, file://, http:// or https://)"
            ));
        }
        let base = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        let optional = |name: &str| match self.fetcher.fetch(&format!("{base}{name}"), false) {
            Ok(data) => Ok(Some(data)),
            Err(FetchError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(format!("seedfrom: {e}")),
        };
        let meta = self
            .fetcher
            .fetch(&format!("{base}meta-data"), false)
            .map_err(|e| format!("seedfrom: {e}"))?;
        Ok(Seed {
            meta_data: Some(parse_meta_data(&meta, &format!("{base}meta-data"))?),
            user_data: optional("user-data")?,
            vendor_data: optional("vendor-data")?,
            network_config: optional("network-config")?,
        })
    }

    fn find(&self, env: &dyn Environment) -> Result<Option<(Seed, Vec<String>)>, String> {
        let mut found = Vec::new();
        let mut meta = Mapping::new();
        for (what, line) in [
            ("SMBIOS serial", env.smbios_serial()),
            ("kernel command line", env.kernel_cmdline()),
        ] {
            if let Some(args) = line.as_deref().and_then(parse_ds_argument) {
                found.push(what.to_string());
                meta = merge_under(meta, &args);
            }
        }
        let mut seed = Seed::default();
        let mut local = None;
        for dir in SEED_DIRS {
            let mut volume = Volume::directory(&env.path(dir));
            if let Some(s) = read_volume(&mut volume)? {
                local = Some((s, volume.path().display().to_string()));
                break;
            }
        }
        if local.is_none() {
            for device in env.candidate_devices() {
                let Ok(Some(mut volume)) = Volume::open(&device) else {
                    continue;
                };
                if !volume.has_label(LABELS) {
                    continue;
                }
                match read_volume(&mut volume)? {
                    Some(s) => {
                        local = Some((s, device.display().to_string()));
                        break;
                    }
                    None => {
                        return Err(format!(
                            "{}: volume labelled '{}' has no meta-data",
                            device.display(),
                            volume.label().unwrap_or("")
                        ))
                    }
                }
            }
        }
        if let Some((s, location)) = local {
            (meta, seed) = layer(meta, s);
            found.push(location);
        }
        if found.is_empty() {
            return Ok(None);
        }
        if let Some(from) = meta
            .get("seedfrom")
            .and_then(Node::as_str)
            .map(str::to_string)
        {
            (meta, seed) = layer(meta, self.seedfrom(env, &from)?);
            found.push(from);
        }
        seed.meta_data = Some(meta);
        Ok(Some((seed, found)))
    }
}

impl DataSource for NoCloud {
    fn name(&self) -> &'static str {
        "NoCloud"
    }

    fn probe(&mut self, env: &dyn Environment) -> Probe {
        let (seed, found) = match self.find(env) {
            Ok(Some(x)) => x,
            Ok(None) => return Probe::NotApplicable,
            Err(e) => return Probe::Failed(format!("NoCloud: {e}")),
        };
        let meta = seed.meta_data.unwrap_or_default();
        let location = found.join(", ");
        let instance_id = match meta
            .get("instance-id")
            .and_then(Node::python_str)
            .filter(|s| !s.trim().is_empty() && s != "None")
        {
            Some(id) => id,
            None => {
                return Probe::Failed(format!(
                    "NoCloud ({location}): meta-data has no 'instance-id'"
                ))
            }
        };
        Probe::Ready(Box::new(DataSourceResult {
            source: "NoCloud".into(),
            location,
            instance_id,
            hostname: meta.get("local-hostname").and_then(Node::python_str),
            user_data: seed.user_data,
            vendor_data: seed.vendor_data,
            network_config: seed.network_config,
            public_keys: normalize_public_keys(meta.get("public-keys")),
            meta_data: meta,
            default_user: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_arguments() {
        let m = parse_ds_argument(
            "ro quiet ds=nocloud;s=http://10.0.0.1/seed/;i=iid-7;h=web1 console=ttyS0",
        )
        .unwrap();
        assert_eq!(
            m.get("seedfrom").unwrap().as_str(),
            Some("http://10.0.0.1/seed/")
        );
        assert_eq!(m.get("instance-id").unwrap().as_str(), Some("iid-7"));
        assert_eq!(m.get("local-hostname").unwrap().as_str(), Some("web1"));
        assert!(parse_ds_argument("ds=nocloud-net").unwrap().is_empty());
        assert!(parse_ds_argument("ds=nocloudx;s=y").is_none());
        assert!(parse_ds_argument("root=/dev/sda").is_none());
    }
}
