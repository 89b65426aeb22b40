//! The dashboard window. It is created on demand and destroyed when closed, so WebKit's
//! processes (hundreds of MB) go with it and the tray app costs what the server costs.
//! It loads the server's own pages from the loopback admin listener, the same pages a browser
//! gets; while the server is not serving, it shows the bundled status page instead.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder};
use tauri_plugin_opener::OpenerExt;

use crate::server::Phase;

pub const LABEL: &str = "main";

/// Where the window should be for `phase`.
fn url_for(phase: &Phase) -> WebviewUrl {
    let status = |state: &str| WebviewUrl::App(format!("index.html#{state}").into());
    match phase {
        Phase::Running(info) => match info.admin_url.parse() {
            Ok(url) => WebviewUrl::External(url),
            Err(_) => status("failed=The dashboard address is invalid."),
        },
        Phase::Starting => status("starting"),
        Phase::Paused => status("paused"),
        Phase::Stopping | Phase::Stopped => status("stopping"),
        Phase::Failed(message) => status(&format!("failed={}", percent_encode(message))),
    }
}

fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Shows the window (creating it if it was closed) and brings it to the front.
pub fn open(app: &AppHandle, phase: &Phase) -> tauri::Result<WebviewWindow> {
    if let Some(window) = app.get_webview_window(LABEL) {
        let _ = window.unminimize();
        window.show()?;
        window.set_focus()?;
        return Ok(window);
    }
    let handle = app.clone();
    WebviewWindowBuilder::new(app, LABEL, url_for(phase))
        .title("Hearth")
        .inner_size(1024.0, 760.0)
        .min_inner_size(800.0, 600.0)
        .on_navigation(move |url| allow_navigation(&handle, url))
        .build()
}

/// Follows the server: the dashboard when it serves, the status page otherwise. A restart the
/// dashboard asked for keeps the page (it waits for the server itself).
pub fn follow(app: &AppHandle, phase: &Phase) {
    let Some(window) = app.get_webview_window(LABEL) else { return };
    let current = window.url().ok();
    let target = match url_for(phase) {
        WebviewUrl::External(url) => {
            if current.is_some_and(|c| c.origin() == url.origin()) {
                return;
            }
            url
        }
        WebviewUrl::App(path) => {
            let Ok(url) = bundled_origin().join(&path.to_string_lossy()) else { return };
            url
        }
        _ => return,
    };
    let _ = window.navigate(target);
}

/// The origin Tauri serves the bundled pages from.
fn bundled_origin() -> url::Url {
    let origin = if cfg!(windows) { "http://tauri.localhost/" } else { "tauri://localhost/" };
    url::Url::parse(origin).expect("a valid URL")
}

fn is_bundled(url: &url::Url) -> bool {
    // The bundled pages' origin: tauri://localhost (Linux, macOS) or http(s)://tauri.localhost.
    url.scheme() == "tauri" || url.host_str() == Some("tauri.localhost")
}

/// The window stays on Hearth's own pages. A link anywhere else (Element, the docs, a tunnel's
/// site) opens in the default browser instead.
fn allow_navigation(app: &AppHandle, url: &url::Url) -> bool {
    if is_bundled(url) || is_loopback_admin(app, url) {
        return true;
    }
    if matches!(url.scheme(), "https" | "http" | "mailto")
        && let Err(e) = app.opener().open_url(url.as_str(), None::<&str>)
    {
        tracing::warn!(%url, error = %e, "cannot open the link in the browser");
    }
    false
}

fn is_loopback_admin(app: &AppHandle, url: &url::Url) -> bool {
    let Some(state) = app.try_state::<crate::Desktop>() else { return false };
    let Phase::Running(info) = state.server.phase() else { return false };
    let Ok(admin) = url::Url::parse(&info.admin_url) else { return false };
    url.origin() == admin.origin()
}
