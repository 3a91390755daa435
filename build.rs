//! Sets `cfg(tokforge_avx512)` when the compiler has the AVX-512 intrinsics and target
//! features stable (Rust 1.89), so that the pre-tokenizer's AVX-512 build is compiled there
//! and the crate still builds with its MSRV (`rust/src/pretokenize/blocks.rs`, `avx512`).

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tokforge_avx512)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // `rustc 1.95.0 (59807616e 2026-04-14)`: the minor version of Rust 1
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            let mut parts = v.split_whitespace().nth(1)?.split('.');
            (parts.next()? == "1").then_some(())?;
            parts.next()?.parse::<u32>().ok()
        });
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo::rustc-cfg=tokforge_avx512");
    }
}
