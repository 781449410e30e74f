//! Reads the versions of futures-util, scylla and tokio from the Cargo.lock beside the manifest being
//! built and hands them to main.rs as LOCKED_*_VERSION, so the client reports what it was linked with.
use std::path::Path;

fn locked(lock: &str, name: &str) -> String {
    let key = format!("name = \"{}\"\nversion = \"", name);
    let mut found: Vec<&str> = lock
        .match_indices(&key)
        .map(|(at, _)| {
            let rest = &lock[at + key.len()..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect();
    found.dedup();
    match found.len() {
        0 => "unknown".to_string(),
        1 => found[0].to_string(),
        _ => found.join("+"),
    }
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let path = Path::new(&dir).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", path.display());
    let lock = std::fs::read_to_string(&path).unwrap_or_default();
    for (env, name) in [("FUTURES_UTIL", "futures-util"), ("SCYLLA", "scylla"), ("TOKIO", "tokio")] {
        println!("cargo:rustc-env=LOCKED_{}_VERSION={}", env, locked(&lock, name));
    }
}
