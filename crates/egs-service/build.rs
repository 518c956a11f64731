//! Places the functions a guest's daemon runs together at the front of the code in the
//! shipped form (static musl release builds): see `hot-text.ld` and `scripts/hot-text`.
//! Other builds link as usual.

fn main() {
    println!("cargo:rerun-if-changed=hot-text.ld");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && var("PROFILE") == "release"
    {
        let script = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-text.ld");
        // With INSERT, the script adds one output section to the linker's default layout.
        println!(
            "cargo:rustc-link-arg-bin=egs-service=-Wl,-T,{}",
            script.display()
        );
    }
}
