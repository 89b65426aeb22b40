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
    let recorded = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("code-order.txt");
    let Ok(text) = std::fs::read_to_string(&recorded) else { return };
    let list = std::path::Path::new(&env("OUT_DIR")).join("code-order.txt");
    // The linker splits `-Wl,` arguments at commas.
    if list.to_string_lossy().contains(',') || std::fs::write(&list, with_nearby_copies(&text)).is_err() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=hearth=-Wl,--symbol-ordering-file={}", list.display());
    println!("cargo:rustc-link-arg-bin=hearth=-Wl,--no-warn-symbol-ordering");
}

/// How far the numbers of LLVM's local copies move between the build a list was recorded from
/// and a later one (by 4-6 over one small commit; see `with_nearby_copies`).
const COPY_NUMBER_DRIFT: u32 = 200;

/// The recorded list for the linker, where a Rust function's local copy (`name.9523`: fat LTO
/// keeps one per crate that inlined a function like `bytes::static_clone`, numbered in the
/// order it merges them) is followed by the same name with the numbers around its own. Any
/// change elsewhere in the program moves those numbers, so the recorded name soon names
/// nothing; the copy, run at every start, then lands anywhere in the binary and maps 64 KiB
/// of code around it. Nearby numbers also catch other copies of the same function, which
/// are small and cost little in the ordered part.
fn with_nearby_copies(recorded: &str) -> String {
    let mut out = String::with_capacity(recorded.len());
    let mut seen = std::collections::HashSet::new();
    for name in recorded.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let rust = name.starts_with("_ZN") || name.starts_with("_R");
        let copy = name.rsplit_once('.').and_then(|(base, n)| Some((base, n.parse::<u32>().ok()?)));
        let names: Vec<String> = match copy {
            Some((base, n)) if rust => std::iter::once(n)
                .chain((1..=COPY_NUMBER_DRIFT).flat_map(|d| [n.checked_sub(d), n.checked_add(d)]).flatten())
                .map(|m| format!("{base}.{m}"))
                .collect(),
            _ => vec![name.to_owned()],
        };
        for n in names {
            if seen.insert(n.clone()) {
                out.push_str(&n);
                out.push('\n');
            }
        }
    }
    out
}
