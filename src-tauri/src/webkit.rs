//! Linux: ending WebKitGTK's network process once no window is open.
//!
//! Closing the window destroys the webview and WebKit ends its web process with it, but the
//! network process (about 65 MB) stays: Tauri keeps the web context for the app's lifetime on
//! Linux so that later windows reuse that process (tauri-apps/tauri#14626). A tray app whose
//! window is closed most of the time should not carry it, so it is asked to exit (SIGTERM) when
//! no window is left; WebKit starts a new one for the next window, as after a crash of it.

use std::{path::Path, process::Command, time::Duration};

/// How long after the last window closed: long enough for WebKit to finish with the webview.
const GRACE: Duration = Duration::from_secs(2);

/// Ends this process's WebKit network processes if no window is open after `GRACE`.
pub fn end_network_process_when_idle(app: tauri::AppHandle) {
    if !cfg!(target_os = "linux") {
        return;
    }
    tauri::async_runtime::spawn(async move {
        use tauri::Manager;
        tokio::time::sleep(GRACE).await;
        if !app.webview_windows().is_empty() {
            return;
        }
        for pid in children_running(std::process::id(), "WebKitNetworkProcess") {
            tracing::info!(pid, "no window open: ending WebKit's network process");
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
    });
}

/// Child processes of `parent` whose program file is named `name`.
fn children_running(parent: u32, name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the comm may hold spaces, so split after the last ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            ppid == Some(parent)
        })
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
            Path::new(&*String::from_utf8_lossy(program)).file_name().is_some_and(|f| f == name)
        })
        .collect()
}
