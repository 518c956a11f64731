//! Every case in `../shared/conformance/mime/`: our pipeline yields the parts cloud-init's
//! `UserDataProcessor` yielded (content type, filename, headers, payload, launch index),
//! fetched the same includes, merged the same cloud-config from the same parts, and fails
//! where cloud-init fails.
//!
//! One deliberate difference: in `multipart-gzip-part-nonascii` cloud-init 22.4.2 decodes the
//! decompressed UTF-8 as surrogate escapes and drops the part; we decode it correctly and
//! merge it (checked against the corrected expectation below).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egs_userdata::fetch::{FetchError, Fetcher};
use egs_userdata::pipeline::{process, Limits};
use serde_json::{json, Value as Json};

/// Serves `fetch/` for the case's fake URLs and answers 404 for everything else, as the
/// conformance README prescribes.
struct CaseFetcher {
    urls: HashMap<String, PathBuf>,
}

impl Fetcher for CaseFetcher {
    fn fetch(&self, url: &str, _once: bool) -> Result<Vec<u8>, FetchError> {
        match self.urls.get(url) {
            Some(path) => Ok(std::fs::read(path).unwrap()),
            None => Err(FetchError::Status {
                url: url.to_string(),
                status: 404,
            }),
        }
    }
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The `# from N files` list at the top of cloud-init's `cloud-config.txt`.
fn merged_names(cloud_config_txt: &str) -> Vec<String> {
    cloud_config_txt
        .lines()
        .skip_while(|l| !l.starts_with("# from "))
        .skip(1)
        .take_while(|l| l.starts_with("# "))
        .map(|l| l[2..].to_string())
        .collect()
}

#[test]
fn multipart_cases_match_cloud_init() {
    let root = Path::new(env!("EGS_CONFORMANCE_DIR")).join("mime");
    let index = read_json(&root.join("index.json"));
    let cases = index["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 7, "expected the seven MIME cases");
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let dir = root.join(name);
        let meta = read_json(&dir.join("meta.json"));
        let expected = read_json(&dir.join("expected/parts.json"));
        let urls = meta["fake_urls"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(u, p)| (u.clone(), dir.join(p.as_str().unwrap())))
                    .collect()
            })
            .unwrap_or_default();
        let blob = std::fs::read(dir.join("user-data")).unwrap();
        let result = process(&blob, None, &CaseFetcher { urls }, &Limits::default());

        if expected["outcome"] == "error" {
            let err = result.expect_err(name).to_string();
            let url = expected["include_fetches"][0].as_str().unwrap();
            assert!(err.contains(url) && err.contains("404"), "{name}: {err}");
            continue;
        }
        let ours = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            ours.includes,
            expected["include_fetches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
            "{name}: includes"
        );
        let theirs = expected["parts"].as_array().unwrap();
        assert_eq!(ours.parts.len(), theirs.len(), "{name}: part count");
        for (i, (mine, want)) in ours.parts.iter().zip(theirs).enumerate() {
            assert_eq!(
                mine.content_type, want["content_type"],
                "{name} part {i}: content type"
            );
            assert_eq!(mine.filename, want["filename"], "{name} part {i}: filename");
            assert_eq!(
                mine.launch_index,
                want["launch_index"].as_i64(),
                "{name} part {i}: launch index"
            );
            let headers: Vec<Json> = mine.headers.iter().map(|(k, v)| json!([k, v])).collect();
            assert_eq!(
                Json::from(headers),
                want["headers"],
                "{name} part {i}: headers"
            );
            if name == "multipart-gzip-part-nonascii" && i == 0 {
                let input = std::fs::read(dir.join("inputs/cloud-config.yaml")).unwrap();
                assert_eq!(
                    mine.payload, input,
                    "{name}: the gzip part decodes to its real UTF-8 text"
                );
                continue;
            }
            assert_eq!(
                mine.sha256(),
                want["payload_sha256"],
                "{name} part {i}: payload sha256"
            );
            assert_eq!(
                mine.payload.len() as u64,
                want["payload_size"].as_u64().unwrap(),
                "{name} part {i}: size"
            );
        }
        assert!(!ours.has_errors(), "{name}: {:?}", ours.diagnostics.items);

        let config: Json =
            serde_json::from_str(&egs_cloudconfig::json::to_json(&ours.config)).unwrap();
        let txt = std::fs::read_to_string(dir.join("expected/cloud-config.txt")).unwrap();
        if name == "multipart-gzip-part-nonascii" {
            let mut corrected = read_json(&root.join("multipart-4part/expected/cloud-config.json"));
            corrected["packages"] = json!(["curl", "jq", "htop"]);
            corrected["runcmd"] = json!([["echo", "from-part-1"]]);
            corrected.as_object_mut().unwrap().remove("ntp");
            corrected["timezone"] = json!("Etc/UTC");
            assert_eq!(config, corrected, "{name}: corrected merged config");
            assert_eq!(
                ours.merged_from,
                ["cloud-config.yaml.gz", "cloud-config-2.yaml"]
            );
            continue;
        }
        assert_eq!(
            config,
            read_json(&dir.join("expected/cloud-config.json")),
            "{name}: merged cloud-config"
        );
        assert_eq!(ours.merged_from, merged_names(&txt), "{name}: merged parts");
    }
}
