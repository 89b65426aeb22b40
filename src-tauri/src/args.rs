//! The desktop binary's command line. The same binary is also the headless server: `--headless`
//! (or no display on Linux, where starting GTK would panic) hands everything else to the
//! `hearth` command line, so `hearth-desktop --headless register-user ...` works too.

use std::{ffi::OsString, path::PathBuf};

/// What a launch asks for.
#[derive(Debug, PartialEq)]
pub enum Launch {
    /// The `hearth` command line, with these arguments (program name first).
    Headless(Vec<OsString>),
    Desktop(DesktopArgs),
    /// Print this and exit successfully (`--help`, `--version`).
    Print(String),
}

#[derive(Debug, Default, PartialEq)]
pub struct DesktopArgs {
    pub config: Option<PathBuf>,
    /// Start in the tray without opening the window (how the login item starts the app).
    pub hidden: bool,
    /// An action for the instance already running; a first instance performs it itself.
    pub action: Option<Action>,
}

/// What the tray menu, a second launch (`--quit`...) and signals can ask of the app. One type,
/// so every path runs the same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    OpenDashboard,
    CopyAddress,
    OpenElement,
    Pause,
    Resume,
    OpenLogs,
    /// Start at login on (true) or off; the tray's check item asks for the opposite of now.
    SetAutostart(bool),
    Quit,
}

pub const USAGE: &str = "\
Hearth: a personal Matrix homeserver, as a desktop app.

Usage: hearth-desktop [OPTIONS]
       hearth-desktop --headless [hearth COMMAND and OPTIONS]

Options:
  -c, --config PATH   homeserver.toml to use (default: the OS config folder)
      --hidden        start in the tray without opening the window
      --open          open the dashboard of the running Hearth
      --pause         pause the running Hearth's server
      --resume        resume it
      --quit          stop the running Hearth's server gracefully and quit
      --start-at-login / --no-start-at-login
                      turn starting in the tray at login on or off
      --headless      run the server without a window (also when there is no display);
                      the rest of the line is the `hearth` command line (see --headless --help)
  -h, --help          print this help
  -V, --version       print the version
";

/// Whether a window can be shown. Only Linux can lack a display; GTK would panic there.
pub fn has_display() -> bool {
    if cfg!(target_os = "linux") {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        set("DISPLAY") || set("WAYLAND_DISPLAY")
    } else {
        true
    }
}

/// Parses `args` (program name first). `display` says whether a window can be shown.
pub fn parse(args: Vec<OsString>, display: bool) -> Result<Launch, String> {
    let rest: Vec<OsString> = args.into_iter().skip(1).collect();
    if rest.iter().any(|a| a == "--headless") || !display {
        let mut hearth: Vec<OsString> = vec!["hearth".into()];
        let rest: Vec<OsString> = rest.into_iter().filter(|a| a != "--headless" && a != "--hidden").collect();
        // `hearth-desktop --headless --config x` means `hearth serve --config x`.
        let first = rest.first().and_then(|a| a.to_str()).unwrap_or("");
        if first.is_empty() || (first.starts_with('-') && !matches!(first, "-h" | "--help" | "-V" | "--version")) {
            hearth.push("serve".into());
        }
        hearth.extend(rest);
        return Ok(Launch::Headless(hearth));
    }
    let mut out = DesktopArgs::default();
    let mut it = rest.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg.into_string().map_err(|a| format!("unexpected argument {a:?}"))?;
        let mut action = |a: Action| match out.action.replace(a) {
            Some(_) => {
                Err("give at most one of --open, --pause, --resume, --quit, --start-at-login, --no-start-at-login"
                    .to_owned())
            }
            None => Ok(()),
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Launch::Print(USAGE.to_owned())),
            "-V" | "--version" => return Ok(Launch::Print(format!("hearth-desktop {}\n", hearth_server::VERSION))),
            "--hidden" => out.hidden = true,
            "--open" => action(Action::OpenDashboard)?,
            "--pause" => action(Action::Pause)?,
            "--resume" => action(Action::Resume)?,
            "--quit" => action(Action::Quit)?,
            "--start-at-login" => action(Action::SetAutostart(true))?,
            "--no-start-at-login" => action(Action::SetAutostart(false))?,
            "-c" | "--config" => {
                let path = it.next().ok_or("--config needs a path")?;
                out.config = Some(PathBuf::from(path));
            }
            other => match other.strip_prefix("--config=") {
                Some(path) => out.config = Some(PathBuf::from(path)),
                None => return Err(format!("unexpected argument '{other}'\n\n{USAGE}")),
            },
        }
    }
    Ok(Launch::Desktop(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("hearth-desktop").chain(list.iter().copied()).map(OsString::from).collect()
    }

    fn headless(list: &[&str]) -> Launch {
        Launch::Headless(list.iter().map(OsString::from).collect())
    }

    #[test]
    fn no_display_runs_the_headless_server_with_the_same_options() {
        assert_eq!(parse(args(&[]), false).unwrap(), headless(&["hearth", "serve"]));
        assert_eq!(
            parse(args(&["--config", "/x.toml"]), false).unwrap(),
            headless(&["hearth", "serve", "--config", "/x.toml"])
        );
        // The login item's --hidden means nothing without a window.
        assert_eq!(parse(args(&["--hidden"]), false).unwrap(), headless(&["hearth", "serve"]));
    }

    #[test]
    fn headless_passes_hearth_commands_through() {
        assert_eq!(
            parse(args(&["--headless", "register-user", "-u", "alice"]), true).unwrap(),
            headless(&["hearth", "register-user", "-u", "alice"])
        );
        assert_eq!(parse(args(&["--headless", "--help"]), true).unwrap(), headless(&["hearth", "--help"]));
    }

    #[test]
    fn desktop_options() {
        let Launch::Desktop(d) = parse(args(&["--hidden", "--config=/c.toml"]), true).unwrap() else { panic!() };
        assert_eq!(d, DesktopArgs { config: Some("/c.toml".into()), hidden: true, action: None });
        let Launch::Desktop(d) = parse(args(&["--quit"]), true).unwrap() else { panic!() };
        assert_eq!(d.action, Some(Action::Quit));
    }

    #[test]
    fn bad_options_are_refused_with_the_usage() {
        let e = parse(args(&["--frobnicate"]), true).unwrap_err();
        assert!(e.contains("--frobnicate") && e.contains("Usage:"), "{e}");
        assert!(parse(args(&["--quit", "--pause"]), true).unwrap_err().contains("at most one"));
        assert!(parse(args(&["--config"]), true).unwrap_err().contains("needs a path"));
    }
}
