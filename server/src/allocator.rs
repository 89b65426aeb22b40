//! glibc's allocator, tuned for a long-running server on a small machine.
//!
//! With its defaults, glibc's malloc gives each new thread an arena of its own (up to eight per
//! core) and keeps what a burst freed in whichever arena it came from; and once a large buffer
//! is freed it raises its threshold for taking large buffers straight from the system, so the
//! next ones stay in an arena for good. For Hearth (a thread per SQLite connection, the password
//! hashing thread's 7 MiB buffer, sliding sync's bursts) that was about 7 MiB more at the
//! benchmark's peak, and the 7 MiB buffer kept after the first login (docs/benchmarks-results.md).
//! glibc reads these settings only at process start, from the environment, so the server starts
//! itself over once with them set. `exec` keeps the process ID: a service manager, the desktop
//! app and the benchmark all see one process.

/// Two arenas, and buffers of 4 MiB or more (the password hashing thread's) mapped and unmapped
/// on their own. Setting the threshold also turns off glibc's raising of it, which kept the
/// hashing buffer in an arena after its first use.
pub const TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304";

/// Starts this program over with [`TUNABLES`] in its environment, unless the allocator was
/// already told what to do (by a previous start, or by whoever started us: their choice wins).
/// Returns when there is nothing to do or the new start failed; the server then runs untuned.
/// Call it before any thread is started.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune() {
    use std::os::unix::process::CommandExt;
    let chosen = ["GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"];
    if chosen.iter().any(|name| std::env::var_os(name).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // Only returns on failure (say, the executable was replaced or removed since it started).
    let error = command.args(args).env("GLIBC_TUNABLES", TUNABLES).exec();
    eprintln!("hearth: could not restart with the allocator tuned ({error}); going on without");
}

/// Other allocators (macOS's, Windows', musl's) give large buffers back when they are freed.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
