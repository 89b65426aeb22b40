//! Hearth's desktop app: the homeserver in-process on Tauri's tokio runtime, a tray menu, and the
//! dashboard in a window that is created on demand and destroyed on close. Without a display, or
//! with `--headless`, the same binary is the headless `hearth` and never touches Tauri.
//!
//! Everything the dashboard does goes through the server's HTTP admin API, as in a browser; the
//! app only adds what a browser cannot: the tray, start at login, opening folders, pausing the
//! server, and handing the window its admin link.

mod args;
mod server;
mod tray;
mod updates;
mod webkit;
mod window;

use std::{process::ExitCode, sync::Mutex};

use args::{Action, DesktopArgs, Launch};
use server::{DesktopServer, Phase};
use tauri::{AppHandle, Manager, RunEvent, WindowEvent};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_opener::OpenerExt as _;

/// Where "Open in Element Web" goes: the sign-in page, with the homeserver address on the
/// clipboard for its "Edit" homeserver field.
const ELEMENT_WEB_LOGIN: &str = "https://app.element.io/#/login";

/// The app's state, managed by Tauri.
pub(crate) struct Desktop {
    pub server: DesktopServer,
    tray: Mutex<Option<tray::Tray>>,
}

pub fn main() -> ExitCode {
    // Before any thread exists: this may start the program over (see `hearth_server::allocator`).
    hearth_server::allocator::tune();
    let launch = match args::parse(std::env::args_os().collect(), args::has_display()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hearth-desktop: {e}");
            return ExitCode::from(2);
        }
    };
    match launch {
        Launch::Print(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Launch::Headless(args) => hearth_server::cli::main_from(args),
        Launch::Desktop(args) => match run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("hearth-desktop: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(args: DesktopArgs) -> anyhow::Result<ExitCode> {
    let DesktopArgs { config, hidden, action } = args;
    let (config, _path) = hearth_server::cli::load(config, true)?;
    let mut config = config.validate()?;
    let log_dir = config.log_dir.clone().or_else(hearth_server::config::default_log_dir);
    let logs = hearth_server::logging::init(&config.log_level, log_dir.as_deref());

    let context = tauri::generate_context!();
    let can_update = updates::configured(&context);
    let mut builder = tauri::Builder::default();
    if can_update {
        builder = builder.plugin(tauri_plugin_updater::Builder::new().build());
    }
    let app = builder
        // First: a second launch hands its arguments to this instance and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            let action = match args::parse(argv.into_iter().map(Into::into).collect(), true) {
                Ok(Launch::Desktop(DesktopArgs { action, .. })) => action.unwrap_or(Action::OpenDashboard),
                _ => Action::OpenDashboard,
            };
            tracing::info!(?action, "asked by a second launch");
            perform(app, action);
        }))
        .plugin(tauri_plugin_autostart::Builder::new().args(["--hidden"]).build())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .setup(move |app| {
            let handle = app.handle().clone();
            if matches!(action, Some(Action::Quit | Action::Pause | Action::Resume | Action::SetAutostart(_))) {
                // We are the only instance: there is nothing to act on.
                eprintln!("hearth-desktop: Hearth is not running");
                handle.exit(0);
                return Ok(());
            }
            let _runtime = tauri::async_runtime::handle().inner().enter();
            let updater = can_update.then(|| updates::TauriUpdater::new(handle.clone()));
            let server_slot = updater.as_ref().map(|u| u.server.clone());
            config.updates =
                updater.map(|u| hearth_server::updates::Updates::new(std::sync::Arc::new(u) as std::sync::Arc<_>));
            let server = DesktopServer::spawn(config, logs.dir.clone());
            if let Some(slot) = server_slot {
                let _ = slot.set(server.clone());
            }
            let autostart = handle.autolaunch().is_enabled().unwrap_or(false);
            let tray = match tray::build(&handle, autostart) {
                Ok(t) => Some(t),
                Err(e) => {
                    // No tray on this desktop: closing the window then leaves the server running
                    // with no icon; launching the app again opens the window.
                    tracing::warn!(error = %e, "no tray icon");
                    None
                }
            };
            app.manage(Desktop { server: server.clone(), tray: Mutex::new(tray) });
            follow_server(&handle, server);
            if !hidden {
                perform(&handle, Action::OpenDashboard);
            }
            // SIGTERM (logout, `kill`) and Ctrl+C quit the way the tray does.
            let h = handle.clone();
            tauri::async_runtime::spawn(async move {
                hearth_server::cli::shutdown_signal().await;
                perform(&h, Action::Quit);
            });
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::Destroyed = event {
                webkit::end_network_process_when_idle(window.app_handle().clone());
            }
        })
        .build(context)?;

    let code = app.run_return(|_app, event| {
        if let RunEvent::ExitRequested { code: None, api, .. } = event {
            // The last window closed: keep serving from the tray. Only Quit exits.
            api.prevent_exit();
        }
    });
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Keeps the tray and the window in step with the server.
fn follow_server(app: &AppHandle, server: DesktopServer) {
    let app = app.clone();
    let mut phases = server.watch();
    tauri::async_runtime::spawn(async move {
        loop {
            let phase = phases.borrow_and_update().clone();
            tracing::info!(phase = phase_name(&phase), "server phase");
            let a = app.clone();
            let _ = app.run_on_main_thread(move || {
                if let Some(tray) = a.state::<Desktop>().tray.lock().ok().as_ref().and_then(|t| t.as_ref()) {
                    tray.follow(&phase);
                }
                // A failure to start is shown even when the app started hidden.
                if matches!(phase, Phase::Failed(_)) {
                    let _ = window::open(&a, &phase);
                }
                window::follow(&a, &phase);
            });
            if phases.changed().await.is_err() {
                break;
            }
        }
    });
}

fn phase_name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Starting => "starting",
        Phase::Running(_) => "running",
        Phase::Paused => "paused",
        Phase::Failed(_) => "failed",
        Phase::Stopping => "stopping",
        Phase::Stopped => "stopped",
    }
}

/// Does what the tray menu, a second launch or a signal asks. Runs on the main thread (window
/// and menu calls want it), whichever thread asked.
pub(crate) fn perform(app: &AppHandle, action: Action) {
    let a = app.clone();
    let _ = app.run_on_main_thread(move || perform_now(&a, action));
}

fn perform_now(app: &AppHandle, action: Action) {
    let Some(desktop) = app.try_state::<Desktop>() else { return };
    let server = &desktop.server;
    let phase = server.phase();
    let client_url = match &phase {
        Phase::Running(info) => Some(info.client_url.clone()),
        _ => None,
    };
    let result: anyhow::Result<()> = (|| {
        match action {
            Action::OpenDashboard => drop(window::open(app, &phase)?),
            Action::CopyAddress => {
                if let Some(url) = client_url {
                    app.clipboard().write_text(url)?;
                }
            }
            Action::OpenElement => {
                if let Some(url) = client_url {
                    app.clipboard().write_text(url)?;
                }
                app.opener().open_url(ELEMENT_WEB_LOGIN, None::<&str>)?;
            }
            Action::Pause => server.pause(),
            Action::Resume => server.resume(),
            Action::OpenLogs => {
                let dir = server.log_dir.clone().ok_or_else(|| anyhow::anyhow!("logs are not written to a folder"))?;
                app.opener().open_path(dir.to_string_lossy(), None::<&str>)?;
            }
            Action::SetAutostart(enable) => {
                let launcher = app.autolaunch();
                if enable { launcher.enable() } else { launcher.disable() }
                    .map_err(|e| anyhow::anyhow!("start at login: {e}"))?;
                tracing::info!(enabled = enable, "start at login");
                if let Some(tray) = desktop.tray.lock().ok().as_ref().and_then(|t| t.as_ref()) {
                    let _ = tray.autostart.set_checked(enable);
                }
            }
            Action::Quit => {
                if matches!(phase, Phase::Stopping | Phase::Stopped) {
                    return Ok(());
                }
                tracing::info!("quitting");
                // The window goes first, so nothing talks to the server while it stops.
                if let Some(w) = app.get_webview_window(window::LABEL) {
                    let _ = w.destroy();
                }
                let (app, server) = (app.clone(), server.clone());
                tauri::async_runtime::spawn(async move {
                    server.stop().await;
                    app.exit(0);
                });
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(?action, error = %format!("{e:#}"), "tray action failed");
    }
}
