// `sqlx::migrate!` embeds ../migrations at compile time; rebuild when a migration is added or
// changed, not only when Rust code changes (sqlx's documented recipe).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    // The packages' build script says which commit it built (see `hearth_server::VERSION`).
    println!("cargo:rerun-if-env-changed=HEARTH_BUILD");
    // installers/build.sh can build another version number (the updater's test builds a newer one).
    println!("cargo:rerun-if-env-changed=HEARTH_PACKAGE_VERSION");
    let version = std::env::var("HEARTH_PACKAGE_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("CARGO_PKG_VERSION").ok())
        .unwrap_or_default();
    match std::env::var("HEARTH_BUILD") {
        Ok(build) if !build.trim().is_empty() => {
            println!("cargo:rustc-env=HEARTH_VERSION={version} ({})", build.trim())
        }
        _ => println!("cargo:rustc-env=HEARTH_VERSION={version}"),
    }
    order_code();
}

/// Asks the linker to place together the functions that a start, an idle server and the
/// benchmark's requests run (`code-order.txt`, written by scripts/code-order.sh). The kernel
/// maps an executable's code in 64 KiB around each page first run; with that code spread over
/// the whole binary, an idle server had 16.5 MiB of its 28 MB of code mapped, for about 3 MiB
/// it ever ran (docs/benchmarks-results.md, "Code placed in the order it runs").
///
/// Only where the linker is known to be LLD, which reads the list: Rust's own `rust-lld` is the
/// default linker for x86-64 Linux. A function the list names that the build does not have (the
/// list is older than the code) is skipped; one it does not name goes after the listed ones.
/// `HEARTH_CODE_ORDER=0` leaves the linker's own order.
fn order_code() {
    println!("cargo:rerun-if-env-changed=HEARTH_CODE_ORDER");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let linker_chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || env("CARGO_ENCODED_RUSTFLAGS").split('\x1f').any(|flag| flag.contains("link"));
    if env("HEARTH_CODE_ORDER") == "0"
        || env("PROFILE") != "release"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || linker_chosen
    {
        return;
    }
    // Only here, so that a new list does not rebuild debug builds, which do not use it.
    println!("cargo:rerun-if-changed=code-order.txt");
    let list = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("code-order.txt");
    // The linker splits `-Wl,` arguments at commas.
    if !list.exists() || list.to_string_lossy().contains(',') {
        return;
    }
    println!("cargo:rustc-link-arg-bin=hearth=-Wl,--symbol-ordering-file={}", list.display());
    println!("cargo:rustc-link-arg-bin=hearth=-Wl,--no-warn-symbol-ordering");
}
