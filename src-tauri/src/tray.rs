//! The tray icon and its menu. Menu items only name an `Action`; `crate::perform` does the work,
//! the same code a second launch (`hearth-desktop --quit`) or a signal runs.

use tauri::{
    AppHandle, Wry,
    menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem},
    tray::TrayIconBuilder,
};

use crate::{args::Action, server::Phase};

/// The menu items whose text or state follows the server.
pub struct Tray {
    status: MenuItem<Wry>,
    pause: MenuItem<Wry>,
    copy: MenuItem<Wry>,
    element: MenuItem<Wry>,
    pub autostart: CheckMenuItem<Wry>,
}

const ITEMS: &[(&str, Action)] = &[
    ("open", Action::OpenDashboard),
    ("copy", Action::CopyAddress),
    ("element", Action::OpenElement),
    ("pause", Action::Pause),
    ("logs", Action::OpenLogs),
    ("autostart", Action::SetAutostart(true)),
    ("quit", Action::Quit),
];

pub fn build(app: &AppHandle, autostart_enabled: bool) -> tauri::Result<Tray> {
    let status = MenuItem::with_id(app, "status", "Hearth is starting…", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open dashboard", true, None::<&str>)?;
    let copy = MenuItem::with_id(app, "copy", "Copy homeserver address", false, None::<&str>)?;
    let element = MenuItem::with_id(app, "element", "Open in Element Web", false, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause server", false, None::<&str>)?;
    let logs = MenuItem::with_id(app, "logs", "Open logs folder", true, None::<&str>)?;
    let autostart = CheckMenuItem::with_id(app, "autostart", "Start at login", true, autostart_enabled, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Hearth", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &copy,
            &element,
            &PredefinedMenuItem::separator(app)?,
            &pause,
            &logs,
            &autostart,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    TrayIconBuilder::with_id("hearth")
        .icon(
            app.default_window_icon()
                .cloned()
                .ok_or_else(|| tauri::Error::InvalidIcon(std::io::Error::other("no icon")))?,
        )
        .tooltip("Hearth")
        .menu(&menu)
        .on_menu_event(|app, event| {
            let id = event.id().as_ref();
            if let Some((_, action)) = ITEMS.iter().find(|(i, _)| *i == id) {
                // Two items say what they do now: pause or resume, start at login or not.
                let action = match (action, app_paused(app)) {
                    (Action::Pause, true) => Action::Resume,
                    (Action::SetAutostart(_), _) => {
                        use tauri_plugin_autostart::ManagerExt;
                        Action::SetAutostart(!app.autolaunch().is_enabled().unwrap_or(false))
                    }
                    (a, _) => *a,
                };
                crate::perform(app, action);
            }
        })
        .build(app)?;
    Ok(Tray { status, pause, copy, element, autostart })
}

fn app_paused(app: &AppHandle) -> bool {
    use tauri::Manager;
    app.try_state::<crate::Desktop>().is_some_and(|d| matches!(d.server.phase(), Phase::Paused | Phase::Failed(_)))
}

impl Tray {
    /// Shows the server's phase in the menu.
    pub fn follow(&self, phase: &Phase) {
        let (status, pause, serving) = match phase {
            Phase::Starting => ("Hearth is starting…".to_owned(), None, false),
            Phase::Running(info) => (format!("Running at {}", info.client_url), Some("Pause server"), true),
            Phase::Paused => ("Paused: nobody can connect".to_owned(), Some("Resume server"), false),
            Phase::Failed(_) => ("Could not start: see the window".to_owned(), Some("Resume server"), false),
            Phase::Stopping | Phase::Stopped => ("Stopping…".to_owned(), None, false),
        };
        let _ = self.status.set_text(status);
        let _ = self.pause.set_enabled(pause.is_some());
        if let Some(text) = pause {
            let _ = self.pause.set_text(text);
        }
        let _ = self.copy.set_enabled(serving);
        let _ = self.element.set_enabled(serving);
    }
}
