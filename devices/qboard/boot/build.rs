//! Links the boot stage at the start of flash and rebuilds it when the signing key changes.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-search={dir}");
    println!("cargo:rustc-link-arg=-Tmemory.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=QBOARD_PUBLIC_KEY");
    if let Ok(k) = std::env::var("QBOARD_PUBLIC_KEY") {
        println!("cargo:rerun-if-changed={k}");
    }
}
