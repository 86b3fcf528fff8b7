// Release builds for x86_64 Linux link with the functions a running process executes
// placed together (`link-order.txt`, written by `bench/link-order.sh`). The kernel maps a
// binary's code in 64 KiB runs around each page touched, so code that runs scattered among
// code that never does keeps most of the binary resident; packed, only the packed part is.
// rustc (1.90 and later) links that target with lld, which reads the list; names missing
// from this build (code edited since the list was made, or a build of other packages
// together, whose dependencies' features and so names differ) are skipped, and the build
// stays correct.

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    if release && lld_target {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/link-order.txt");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
