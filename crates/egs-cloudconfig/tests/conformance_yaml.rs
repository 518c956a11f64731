//! Every cloud-config example in `../shared/conformance/cloud-init-yaml/` loads to exactly
//! what PyYAML's `safe_load` produced (converted with cloud-init's JSON conventions).

use std::path::Path;

#[test]
fn cloud_init_examples_load_like_pyyaml() {
    let dir = Path::new(env!("EGS_CONFORMANCE_DIR")).join("cloud-init-yaml");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("index.json")).expect("conformance index"),
    )
    .unwrap();
    let cases = index["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 26,
        "expected the full corpus, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"]
            .as_str()
            .or_else(|| case["case"].as_str())
            .expect("case name");
        let text = std::fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let node = egs_cloudconfig::yaml::load(&text, 0)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("non-empty document");
        let ours: serde_json::Value =
            serde_json::from_str(&egs_cloudconfig::json::to_json(&node)).unwrap();
        if ours != expected {
            failures.push(name.to_string());
        }
    }
    assert!(failures.is_empty(), "differs from PyYAML: {failures:?}");
}
