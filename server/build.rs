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
}
