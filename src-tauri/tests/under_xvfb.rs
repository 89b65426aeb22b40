//! The desktop app for real: the `hearth-desktop` binary under Xvfb with a private D-Bus session
//! (which the single-instance lock and the tray use), WebKitGTK drawing the dashboard. The window
//! is found, photographed and closed over the X protocol, as a window manager would; the tray's
//! actions are asked for by second launches (`--pause`, `--open`, `--quit`), which run the same
//! code as the tray menu. Needs Debian's xvfb, dbus and libwebkit2gtk-4.1; scripts/test.sh
//! installs them and runs this with `--ignored`.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use x11rb::{
    connection::Connection,
    protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, ImageFormat, MapState, Window},
    rust_connection::RustConnection,
};

/// The binary under test: this build's, or `HEARTH_DESKTOP_BIN` (to measure a release build's
/// memory, docs/desktop.md).
fn app_binary() -> PathBuf {
    std::env::var_os("HEARTH_DESKTOP_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth-desktop")), PathBuf::from)
}

/// An Xvfb server on a display number nobody uses.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let n = (90..200)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) must be installed");
        let socket = format!("/tmp/.X11-unix/X{n}");
        wait_for("Xvfb to start", Duration::from_secs(20), || Path::new(&socket).exists().then_some(()));
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A private D-Bus session bus (the real `dbus-daemon`).
struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    fn start() -> SessionBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus) must be installed");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut address).unwrap();
        SessionBus { child, address: address.trim().to_owned() }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    if wait_exit(child, Duration::from_secs(10)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Everything one app instance runs in: its own HOME (autostart entry, WebKit's data), config,
/// data and log folders.
struct Profile {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    admin_port: u16,
}

impl Profile {
    fn new() -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin_port) = (free_port(), free_port());
        let config = dir.path().join("homeserver.toml");
        std::fs::write(
            &config,
            format!(
                "server_name = \"localhost\"\ndata_dir = \"{data}\"\nlog_dir = \"{logs}\"\nsecret_store = \"file\"\n\
                 [[listeners]]\nport = {port}\nbind_addresses = [\"127.0.0.1\"]\n[admin]\nport = {admin_port}\n",
                data = dir.path().join("data").display(),
                logs = dir.path().join("logs").display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Profile { dir, config, port, admin_port }
    }

    fn command(&self, x: &Xvfb, bus: &SessionBus) -> Command {
        let mut cmd = Command::new(app_binary());
        let home = self.dir.path().join("home");
        cmd.arg("--config")
            .arg(&self.config)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("DISPLAY", &x.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env_remove("WAYLAND_DISPLAY")
            // WebKit's sandbox needs user namespaces, which CI containers may not give.
            .env("WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS", "1")
            .env("RUST_LOG", "info");
        cmd
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/secrets/admin_token")).unwrap()
    }

    /// Runs a second launch (`--open`, `--quit`...) and checks it handed over and exited at once.
    fn second_launch(&self, x: &Xvfb, bus: &SessionBus, flag: &str) {
        let mut child = self.command(x, bus).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(30)).expect("a second launch exits at once");
        assert!(status.success(), "`hearth-desktop {flag}` as a second launch: {status}");
    }
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .ok()
        .and_then(|mut s| {
            use std::io::{Read, Write};
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut reply = String::new();
            s.read_to_string(&mut reply).ok()?;
            Some(reply.starts_with("HTTP/1.1 200") && reply.contains("\"versions\""))
        })
        .unwrap_or(false)
}

/// The X side: find the app's window, photograph the screen, close a window.
struct X {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
}

impl X {
    fn connect(display: &str) -> X {
        let (conn, screen) = x11rb::connect(Some(display)).unwrap();
        let s = &conn.setup().roots[screen];
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        X { conn, root, width, height }
    }

    fn atom(&self, name: &str) -> u32 {
        self.conn.intern_atom(false, name.as_bytes()).unwrap().reply().unwrap().atom
    }

    /// Mapped top-level windows titled `title` (no window manager: they are the root's children).
    fn windows_titled(&self, title: &str) -> Vec<Window> {
        let net_wm_name = self.atom("_NET_WM_NAME");
        let tree = self.conn.query_tree(self.root).unwrap().reply().unwrap();
        tree.children
            .into_iter()
            .filter(|&w| {
                let mapped = self
                    .conn
                    .get_window_attributes(w)
                    .ok()
                    .and_then(|c| c.reply().ok())
                    .is_some_and(|a| a.map_state == MapState::VIEWABLE);
                let name = self
                    .conn
                    .get_property(false, w, net_wm_name, AtomEnum::ANY, 0, 256)
                    .ok()
                    .and_then(|c| c.reply().ok());
                mapped && name.is_some_and(|p| p.value == title.as_bytes())
            })
            .collect()
    }

    /// Asks `window` to close the way a window manager does when its close button is clicked.
    fn close(&self, window: Window) {
        let protocols = self.atom("WM_PROTOCOLS");
        let delete = self.atom("WM_DELETE_WINDOW");
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        self.conn.send_event(false, window, EventMask::NO_EVENT, event).unwrap();
        self.conn.flush().unwrap();
    }

    /// The whole screen as an RGB image.
    fn screenshot(&self) -> image::RgbImage {
        let reply = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, self.width, self.height, !0)
            .unwrap()
            .reply()
            .unwrap();
        // Depth 24 in 32-bit pixels, little-endian: B, G, R, unused.
        let data = &reply.data;
        image::RgbImage::from_fn(u32::from(self.width), u32::from(self.height), |x, y| {
            let i = ((y * u32::from(self.width) + x) * 4) as usize;
            image::Rgb([data[i + 2], data[i + 1], data[i]])
        })
    }
}

/// Pixels close to the dashboard's accent colour (#b3541e: its title and buttons).
fn accent_pixels(img: &image::RgbImage) -> usize {
    img.pixels()
        .filter(|p| p.0[0].abs_diff(0xb3) < 12 && p.0[1].abs_diff(0x54) < 12 && p.0[2].abs_diff(0x1e) < 12)
        .count()
}

/// Resident memory of a process and all its descendants (WebKit's web and network processes are
/// children of the app), in MiB, with the descendants' names.
fn family_rss(pid: u32) -> (f64, Vec<String>) {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map(|(_, c)| c.to_owned()).unwrap_or_default();
        let ppid: u32 = tail.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        procs.push((p, ppid, comm));
    }
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(procs.iter().filter(|(_, pp, _)| *pp == parent).map(|(p, _, _)| *p));
        i += 1;
    }
    let rss = |p: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let kib: u64 = family.iter().map(|&p| rss(p)).sum();
    let names = procs
        .iter()
        .filter(|(p, _, _)| *p != pid && family.contains(p))
        .map(|(p, _, c)| format!("{c} {:.1} MiB", rss(*p) as f64 / 1024.0))
        .collect();
    (kib as f64 / 1024.0, names)
}

/// Memory only this process uses (dirty private pages: heap, stacks), in MiB; the rest of its RSS
/// is shared library code that the OS can drop and reload.
fn private_dirty(pid: u32) -> f64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let kib: u64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Private_Dirty:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    kib as f64 / 1024.0
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn admin(profile: &Profile, method: &str, path: &str, body: Option<Value>) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/_hearth/admin/v1/{path}", profile.admin_port);
        let req = match method {
            "GET" => client.get(url),
            "PUT" => client.put(url).json(&body.unwrap_or(json!({}))),
            _ => client.post(url).json(&body.unwrap_or(json!({}))),
        };
        let resp = req.bearer_auth(profile.admin_token()).send().await.unwrap();
        assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
        resp.json().await.unwrap()
    })
}

fn login(port: u16, user: &str, password: &str) -> reqwest::StatusCode {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/_matrix/client/v3/login"))
            .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}))
            .send()
            .await
            .unwrap()
            .status()
    })
}

#[test]
#[ignore = "needs Xvfb, D-Bus and WebKitGTK: run by scripts/test.sh"]
fn the_app_shows_the_dashboard_keeps_serving_from_the_tray_and_quits_cleanly() {
    let x = Xvfb::start();
    let bus = SessionBus::start();
    let profile = Profile::new();
    let log = std::fs::File::create(profile.dir.path().join("app.log")).unwrap();
    let xc = X::connect(&x.display);
    let launched = Instant::now();
    let mut app = profile.command(&x, &bus).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let pid = app.id();

    // The embedded server answers, and the window shows the dashboard's first-run wizard.
    wait_for("the embedded server", Duration::from_secs(60), || answers(profile.port).then_some(()));
    let serving = launched.elapsed();
    let window =
        wait_for("the Hearth window", Duration::from_secs(60), || xc.windows_titled("Hearth").first().copied());
    let window_shown = launched.elapsed();
    // The header alone has about 2,600 accent pixels; the wizard's first step adds its Start
    // button: the picture is taken once the step is drawn, not just the header.
    let shot = wait_for("the setup wizard drawn in the window", Duration::from_secs(60), || {
        let shot = xc.screenshot();
        (accent_pixels(&shot) > 4000).then_some(shot)
    });
    let wizard_drawn = launched.elapsed();
    // For docs/desktop.md (nothing here is timed): polled every 100 ms, a first start.
    eprintln!(
        "from launch: serving after {} ms, window mapped after {} ms, wizard drawn after {} ms",
        serving.as_millis(),
        window_shown.as_millis(),
        wizard_drawn.as_millis()
    );
    // HEARTH_DESKTOP_SHOT names the picture of another build (the installed package's).
    let name = std::env::var("HEARTH_DESKTOP_SHOT")
        .map_or_else(|_| "desktop-window".to_owned(), |n| format!("desktop-window-{n}"));
    shot.save(screenshot_dir().join(format!("{name}.png"))).unwrap();
    let setup = admin(&profile, "GET", "setup", None);
    assert_eq!(setup["current"], "welcome", "a first run starts the wizard: {setup}");
    // The dashboard shows where the secrets went (the keychain probe's outcome).
    let status = admin(&profile, "GET", "status", None);
    assert!(status["secret_store"].as_str().unwrap().contains("0600 files"), "{status}");

    let (with_window, children) = family_rss(pid);
    let dirty_with_window = private_dirty(pid);
    assert!(children.iter().any(|c| c.starts_with("WebKitWebProces")), "WebKit draws the window: {children:?}");
    let children_up = children;

    // Closing the window keeps the server and ends WebKit's web process with the window.
    xc.close(window);
    wait_for("the window to close", Duration::from_secs(30), || xc.windows_titled("Hearth").is_empty().then_some(()));
    wait_for("WebKit's processes to end", Duration::from_secs(30), || family_rss(pid).1.is_empty().then_some(()));
    // What the tray app settles at (for docs/desktop.md; nothing here is timed).
    std::thread::sleep(Duration::from_secs(3));
    let (closed, _) = family_rss(pid);
    assert!(app.try_wait().unwrap().is_none(), "the app keeps running in the tray");
    assert!(answers(profile.port), "the server keeps answering with the window closed");
    eprintln!(
        "resident memory of the app and its children: {with_window:.1} MiB with the window ({children_up}), \
         {closed:.1} MiB after closing it; the app's own private dirty memory: {dirty_with_window:.1} MiB, then {:.1} MiB",
        private_dirty(pid),
        children_up = children_up.join(", "),
    );
    let user =
        admin(&profile, "POST", "users", Some(json!({"username": "alice", "password": "correct horse battery"})));
    assert_eq!(user["user_id"], "@alice:localhost");

    // The tray's actions, through second launches: pause stops the server, resume restarts it,
    // open brings the window back.
    profile.second_launch(&x, &bus, "--pause");
    wait_for("the server to pause", Duration::from_secs(30), || (!answers(profile.port)).then_some(()));
    profile.second_launch(&x, &bus, "--resume");
    wait_for("the server to resume", Duration::from_secs(30), || answers(profile.port).then_some(()));
    profile.second_launch(&x, &bus, "--open");
    wait_for("the window to come back", Duration::from_secs(60), || {
        (!xc.windows_titled("Hearth").is_empty()).then_some(())
    });
    // Drawn again, by new WebKit processes.
    wait_for("the dashboard drawn again", Duration::from_secs(60), || {
        (accent_pixels(&xc.screenshot()) > 500).then_some(())
    });
    // Start at login: a login item that starts the app in the tray, and gone again when off.
    let autostart = profile.dir.path().join("home/.config/autostart");
    let entry = || {
        std::fs::read_dir(&autostart)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "desktop"))
    };
    profile.second_launch(&x, &bus, "--start-at-login");
    let file = wait_for("the login item", Duration::from_secs(30), entry);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("--hidden") && text.contains("hearth-desktop"), "{text}");
    profile.second_launch(&x, &bus, "--no-start-at-login");
    wait_for("the login item to go", Duration::from_secs(30), || entry().is_none().then_some(()));

    let launches = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p.ends_with("hearth-desktop")))
            .count()
    };
    assert_eq!(launches(), 1, "second launches hand over and exit; one app runs");

    // Quit: the server stops gracefully and the process exits 0.
    profile.second_launch(&x, &bus, "--quit");
    let status = wait_exit(&mut app, Duration::from_secs(30)).expect("the app exits after Quit");
    assert!(status.success(), "exit status {status}");
    assert!(!answers(profile.port));
    let log = std::fs::read_to_string(profile.dir.path().join("app.log")).unwrap();
    assert!(log.contains("quitting") && log.contains("stopped"), "the server stopped gracefully:\n{log}");

    // The database is intact: the same binary without a display is the headless server, and
    // alice signs in there.
    let mut headless = Command::new(app_binary())
        .arg("--config")
        .arg(&profile.config)
        .env("HOME", profile.dir.path().join("home"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the headless server", Duration::from_secs(60), || answers(profile.port).then_some(()));
    assert_eq!(login(profile.port, "alice", "correct horse battery"), reqwest::StatusCode::OK);
    terminate(&mut headless);
}

/// Serves the update files of HEARTH_UPDATE_FILES on a loopback port: `/latest.json` is the
/// manifest named by `manifest` (the tampered one first), with the placeholder base address the
/// packaging suite wrote replaced by this server's own.
struct UpdateServer {
    port: u16,
    manifest: std::sync::Arc<std::sync::Mutex<&'static str>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl UpdateServer {
    const BASE: &'static str = "http://update-server.invalid";

    fn start(dir: PathBuf) -> UpdateServer {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let manifest = std::sync::Arc::new(std::sync::Mutex::new("tampered.json"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (which, log) = (manifest.clone(), requests.clone());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(path.clone());
                let file = match path.as_str() {
                    "/latest.json" => dir.join(*which.lock().unwrap()),
                    p => dir.join(p.trim_start_matches('/')),
                };
                let reply = match std::fs::read(&file) {
                    Ok(mut body) => {
                        if file.extension().is_some_and(|e| e == "json") {
                            let text = String::from_utf8(body).unwrap();
                            body = text.replace(Self::BASE, &format!("http://127.0.0.1:{port}")).into_bytes();
                        }
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                                .into_bytes();
                        r.extend(body);
                        r
                    }
                    Err(_) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = conn.write_all(&reply);
            }
        });
        UpdateServer { port, manifest, requests }
    }
}

fn installed_version() -> String {
    let out = Command::new("dpkg-query").args(["-W", "-f", "${Version}", "hearth"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn public_key(port: u16) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let keys: Value =
            reqwest::get(format!("http://127.0.0.1:{port}/_matrix/key/v2/server")).await.unwrap().json().await.unwrap();
        keys["verify_keys"].clone()
    })
}

/// The hearth-desktop processes running (the app restarts itself into a new process).
fn app_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path().join("exe"))
                .is_ok_and(|p| p.to_string_lossy().trim_end_matches(" (deleted)").ends_with("/hearth-desktop"))
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
#[ignore = "needs the installed .deb with a test update key, and HEARTH_UPDATE_FILES: run by tests/packaging/desktop.sh"]
fn the_installed_app_updates_itself_from_a_signed_manifest_and_keeps_its_data() {
    let files = PathBuf::from(std::env::var_os("HEARTH_UPDATE_FILES").expect("HEARTH_UPDATE_FILES"));
    let newer = std::env::var("HEARTH_UPDATE_VERSION").expect("HEARTH_UPDATE_VERSION");
    let updates = UpdateServer::start(files);
    let x = Xvfb::start();
    let bus = SessionBus::start();
    let profile = Profile::new();
    // The manifest on a loopback address: the outbound policy refuses loopback unless allowed.
    let mut config = std::fs::read_to_string(&profile.config).unwrap();
    config = format!(
        "update_manifest_url = \"http://127.0.0.1:{}/latest.json\"\nip_range_whitelist = [\"127.0.0.1/32\"]\n{config}",
        updates.port
    );
    std::fs::write(&profile.config, config).unwrap();
    let before = installed_version();
    let log = std::fs::File::create(profile.dir.path().join("app.log")).unwrap();
    let mut app =
        profile.command(&x, &bus).arg("--hidden").stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    wait_for("the embedded server", Duration::from_secs(60), || answers(profile.port).then_some(()));
    let user =
        admin(&profile, "POST", "users", Some(json!({"username": "alice", "password": "correct horse battery"})));
    assert_eq!(user["user_id"], "@alice:localhost");
    let key = public_key(profile.port);

    // The first start asks at once (it never asked before): the update and what changed.
    let status = wait_for("the first check", Duration::from_secs(60), || {
        let s = admin(&profile, "GET", "updates", None);
        s["last_checked"].is_i64().then_some(s)
    });
    assert_eq!(status["supported"], true, "{status}");
    assert_eq!(status["current_version"], before, "the app reports the installed version: {status}");
    assert_eq!(status["available"]["version"], newer.as_str(), "{status}");
    assert!(status["available"]["notes"].as_str().unwrap().contains("What changed"), "{status}");
    assert!(status["next_check"].as_i64().unwrap() >= status["last_checked"].as_i64().unwrap() + 86_399_000);

    // A package whose bytes do not match its signature: refused, nothing changed, still serving.
    let started = admin(&profile, "POST", "updates/install", Some(json!({"version": newer})));
    assert_eq!(started["install"]["state"], "installing", "{started}");
    let failed = wait_for("the tampered update to be refused", Duration::from_secs(60), || {
        let s = admin(&profile, "GET", "updates", None);
        (s["install"]["state"] == "failed").then_some(s)
    });
    let error = failed["install"]["error"].as_str().unwrap();
    assert!(error.contains("not signed with Hearth's key"), "{failed}");
    assert_eq!(installed_version(), before, "nothing was installed");
    assert!(answers(profile.port), "the server kept serving");
    assert!(app.try_wait().unwrap().is_none());

    // Checks off: kept in the database, and no next check.
    let off = admin(&profile, "PUT", "updates", Some(json!({"checks": false})));
    assert_eq!(off["checks"], false);
    assert!(off["next_check"].is_null(), "{off}");

    // The genuine package, asked for on demand: downloaded, verified, the server stopped
    // gracefully, installed, and the app restarted into it.
    *updates.manifest.lock().unwrap() = "latest.json";
    let checked = admin(&profile, "POST", "updates/check", None);
    assert_eq!(checked["available"]["version"], newer.as_str(), "{checked}");
    let old_pid = app.id();
    admin(&profile, "POST", "updates/install", Some(json!({"version": newer})));
    let status = wait_exit(&mut app, Duration::from_secs(120)).expect("the old app exits after installing");
    assert!(status.success(), "the old app exits cleanly: {status}");
    assert_eq!(installed_version(), newer, "dpkg has the new version");
    let new_pid = wait_for("the app restarted into the new version", Duration::from_secs(60), || {
        app_pids().into_iter().find(|p| *p != old_pid)
    });
    wait_for("the new version serving", Duration::from_secs(60), || answers(profile.port).then_some(()));
    let after = wait_for("the dashboard's API again", Duration::from_secs(30), || {
        let s = admin(&profile, "GET", "updates", None);
        (s["current_version"] == newer.as_str()).then_some(s)
    });
    assert_eq!(after["checks"], false, "the switch survived the update: {after}");
    // Accounts, passwords and the server's signing key survived it.
    assert_eq!(login(profile.port, "alice", "correct horse battery"), reqwest::StatusCode::OK);
    assert_eq!(public_key(profile.port), key, "the same signing key");
    let log = std::fs::read_to_string(profile.dir.path().join("app.log")).unwrap();
    assert!(log.contains("signature verified") && log.contains("server stopped for the update"), "{log}");
    let asked = updates.requests.lock().unwrap().clone();
    assert!(asked.iter().any(|p| p.ends_with(".deb")), "{asked:?}");

    profile.second_launch(&x, &bus, "--quit");
    wait_for("the updated app to quit", Duration::from_secs(30), || (!app_pids().contains(&new_pid)).then_some(()));
}
