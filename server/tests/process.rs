//! The real `hearth` binary: first run, config errors, the CLI, graceful shutdown, and no lost
//! writes across kill -9.

mod common;

use std::{
    io::{Read, Write},
    process::Command,
    time::Duration,
};

use common::binary::{access_token, client, login, register, run, spawn, try_register, write_config};
use serde_json::Value;

const OPEN: &str = "enable_registration = true\nenable_registration_without_verification = true";

#[test]
fn first_run_writes_a_commented_config_and_uses_the_os_folders() {
    let home = tempfile::tempdir().unwrap();
    let p = spawn(home.path(), &[], &[("HEARTH_LISTEN", "127.0.0.1:0")]);
    let config = home.path().join("config/hearth/homeserver.toml");
    let text = std::fs::read_to_string(&config).expect("default config written");
    assert!(text.contains("# The name in every user ID"), "the file is commented");
    let banner = p.stdout.join("\n");
    assert!(banner.contains(&config.display().to_string()), "{banner}");
    assert!(banner.contains(&home.path().join("data/hearth").display().to_string()), "{banner}");
    assert!(banner.contains("Client URL:"), "{banner}");
    assert!(home.path().join("data/hearth/hearth.db").exists());
    let v: Value = client().get(format!("{}/_matrix/client/versions", p.base)).send().unwrap().json().unwrap();
    assert!(v["versions"].is_array());
    // A daily log file appears in the OS log folder.
    let logs: Vec<_> = std::fs::read_dir(home.path().join("state/hearth/logs")).unwrap().collect();
    assert!(!logs.is_empty(), "log file written");
}

/// A new room of the user whose token this is; its ID.
fn create_room(base: &str, token: &str) -> String {
    let room: Value = client()
        .post(format!("{base}/_matrix/client/v3/createRoom"))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    room["room_id"].as_str().unwrap().to_owned()
}

#[test]
fn answered_registrations_survive_kill_9() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let cfg = cfg.to_str().unwrap();
    let mut p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let users: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    for u in &users {
        assert_eq!(register(&p.base, u), 200);
    }
    // SIGKILL: no chance to flush or checkpoint anything.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let p2 = spawn(home.path(), &["serve", "--config", cfg], &[]);
    for u in &users {
        assert_eq!(login(&p2.base, u, "pw-long-enough"), 200, "{u} lost after kill -9");
    }
}

/// Messages are written in batches by one writer while the next ones are already being built.
/// Every message that was answered 200 must be there after kill -9, however many were in
/// flight when the process died.
#[test]
fn answered_messages_survive_kill_9_in_the_middle_of_a_burst() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let cfg = cfg.to_str().unwrap();
    let mut p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(register(&p.base, "talker"), 200);
    let token = access_token(&p.base, "talker", "pw-long-enough");
    let room = create_room(&p.base, &token);
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let senders: Vec<_> = (0..6)
        .map(|t| {
            let (base, token, room, acknowledged) = (p.base.clone(), token.clone(), room.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let http = client();
                for i in 0.. {
                    let url = format!("{base}/_matrix/client/v3/rooms/{room}/send/m.room.message/k{t}-{i}");
                    let Ok(r) = http
                        .put(url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"msgtype": "m.text", "body": "x"}))
                        .send()
                    else {
                        return; // the server is gone
                    };
                    if r.status() != 200 {
                        return;
                    }
                    let Ok(v) = r.json::<Value>() else { return };
                    acknowledged.lock().unwrap().push(v["event_id"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    // Let the burst run, then SIGKILL while sends are in flight.
    while acknowledged.lock().unwrap().len() < 150 {
        std::thread::sleep(Duration::from_millis(5));
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    for s in senders {
        s.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let p2 = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let token = access_token(&p2.base, "talker", "pw-long-enough");
    let page: Value = client()
        .get(format!("{}/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1000", p2.base))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let stored: std::collections::HashSet<&str> =
        page["chunk"].as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str()).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(id.as_str())).collect();
    assert!(lost.is_empty(), "{} of {} answered messages lost after kill -9", lost.len(), acknowledged.len());
    // And the room still takes messages (its graph and state survived the crash intact).
    let r = client()
        .put(format!("{}/_matrix/client/v3/rooms/{room}/send/m.room.message/after", p2.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"msgtype": "m.text", "body": "after"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A delayed event (MSC4140) answered 200 is sent after kill -9 and a restart: the schedule is
/// in the database, not in a timer of the dead process.
#[test]
fn a_scheduled_event_is_sent_after_kill_9_and_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let cfg = cfg.to_str().unwrap();
    let mut p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(register(&p.base, "planner"), 200);
    let token = access_token(&p.base, "planner", "pw-long-enough");
    let http = client();
    let room = create_room(&p.base, &token);
    let r: Value = http
        .put(format!("{}/_matrix/client/v3/rooms/{room}/send/m.room.message/t1?org.matrix.msc4140.delay=2500", p.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"msgtype": "m.text", "body": "left the call"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(r["delay_id"].is_string(), "{r}");
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let p2 = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let token = access_token(&p2.base, "planner", "pw-long-enough");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page: Value = client()
            .get(format!("{}/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=10", p2.base))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let sent = page["chunk"].as_array().unwrap().iter().filter(|e| e["content"]["body"] == "left the call").count();
        if sent > 0 {
            assert_eq!(sent, 1, "sent once: {page}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the scheduled event never came after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let cfg = cfg.to_str().unwrap();
    let mut p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(register(&p.base, "alice"), 200);
    // A request whose headers have arrived but whose body has not: certainly in flight when the
    // signal comes. The server must wait for the rest of it and answer.
    let body =
        br#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"pw-long-enough"}"#;
    let addr = p.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(conn, "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    conn.write_all(&body[..10]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = p.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the in-flight login was answered: {answer}");
    assert!(answer.contains("access_token"), "{answer}");
    let status = p.child.wait().unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    // The database was closed cleanly: no WAL left behind, and it reopens with the data.
    assert!(
        !home.path().join("data/hearth.db-wal").exists()
            || std::fs::metadata(home.path().join("data/hearth.db-wal")).unwrap().len() == 0
    );
    let p2 = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(login(&p2.base, "alice", "pw-long-enough"), 200);
}

/// On glibc the server runs with its allocator tuned: it starts itself over with
/// `GLIBC_TUNABLES` set, as the same process (the one a service manager started and signals).
/// An allocator setting made by whoever starts it is left as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_server_tunes_its_allocator_in_the_same_process_unless_told_otherwise() {
    // The process's environment, its variables joined by ':'. (glibc parses GLIBC_TUNABLES in
    // place, leaving NULs between its settings: joined, they read as they were set.)
    let environment = |p: &common::binary::Proc| -> String {
        let raw = std::fs::read(format!("/proc/{}/environ", p.child.id())).expect("the process we started runs");
        String::from_utf8_lossy(&raw).replace('\0', ":")
    };
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let cfg = cfg.to_str().unwrap();
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let env = environment(&p);
    let tuned = format!("GLIBC_TUNABLES={}", hearth_server::allocator::TUNABLES);
    assert!(env.contains(&tuned), "{env}");
    // Registering hashes a password: the buffer that is now mapped and unmapped works.
    assert_eq!(register(&p.base, "alice"), 200);
    assert_eq!(login(&p.base, "alice", "pw-long-enough"), 200);
    drop(p);
    let p = spawn(home.path(), &["serve", "--config", cfg], &[("MALLOC_ARENA_MAX", "4")]);
    let env = environment(&p);
    assert!(env.contains("MALLOC_ARENA_MAX=4"), "{env}");
    assert!(!env.contains("GLIBC_TUNABLES="), "{env}");
    assert_eq!(login(&p.base, "alice", "pw-long-enough"), 200);
}

#[test]
fn register_user_creates_an_admin_without_a_running_server() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, err) = run(
        home.path(),
        &["register-user", "--config", cfg, "--user", "boss", "--password", "pw-long-enough", "--admin"],
        None,
    );
    assert!(ok, "{out} {err}");
    assert!(out.contains("@boss:proc.test"), "{out}");
    // Password from stdin, and a duplicate is refused with a clear message.
    let (ok, _, err) =
        run(home.path(), &["register-user", "--config", cfg, "--user", "kid"], Some("pw2-long-enough\n"));
    assert!(ok, "{err}");
    let (ok, _, err) =
        run(home.path(), &["register-user", "--config", cfg, "--user", "boss", "--password", "x-long-enough"], None);
    assert!(!ok);
    assert!(err.contains("already taken"), "{err}");
    let (ok, _, err) = run(
        home.path(),
        &["register-user", "--config", cfg, "--user", "bad name", "--password", "x-long-enough"],
        None,
    );
    assert!(!ok && err.contains("User ID can only contain"), "{err}");
    // The password policy holds here too, said plainly.
    let (ok, _, err) =
        run(home.path(), &["register-user", "--config", cfg, "--user", "tiny", "--password", "short"], None);
    assert!(!ok, "a 5-character password is refused");
    assert!(err.contains("at least 8 characters") && !err.contains("400"), "{err}");

    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(login(&p.base, "boss", "pw-long-enough"), 200);
    assert_eq!(login(&p.base, "kid", "pw2-long-enough"), 200);
    // The admin can use the admin API.
    let r = client()
        .get(format!("{}/_synapse/admin/v1/registration_tokens", p.base))
        .bearer_auth(access_token(&p.base, "boss", "pw-long-enough"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // And register-user works while the server runs (SQLite WAL, busy timeout).
    let (ok, _, err) =
        run(home.path(), &["register-user", "--config", cfg, "--user", "late", "--password", "pw3-long-enough"], None);
    assert!(ok, "{err}");
    assert_eq!(login(&p.base, "late", "pw3-long-enough"), 200);
}

#[test]
fn environment_overrides_the_file() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let p = spawn(
        home.path(),
        &["serve", "--config", cfg.to_str().unwrap()],
        &[("HEARTH_SERVER_NAME", "env.test"), ("HEARTH_PUBLIC_BASEURL", "https://chat.env.test/")],
    );
    let v: Value = client().get(format!("{}/.well-known/matrix/client", p.base)).send().unwrap().json().unwrap();
    assert_eq!(v["m.homeserver"]["base_url"], "https://chat.env.test");
    let v: Value = client().get(format!("{}/_matrix/key/v2/server", p.base)).send().unwrap().json().unwrap();
    assert_eq!(v["server_name"], "env.test");
}

/// Each broken config stops the program with a non-zero exit and one message naming the key.
#[test]
fn configs_that_cannot_work_are_refused_with_the_key_named() {
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("unparseable", "server_name = \"x".into(), "not valid TOML"),
        ("wrong type", "server_name = \"a.test\"\nenable_registration = \"yes\"".into(), "enable_registration"),
        ("bad server name", "server_name = \"not a name\"".into(), "server_name"),
        ("open registration", "enable_registration = true".into(), "enable_registration_without_verification"),
        ("bad size", "max_upload_size = \"lots\"".into(), "max_upload_size"),
        ("tls", "[[listeners]]\nport = 1\ntls = true".into(), "listeners[0].tls"),
        ("bad secret store", "secret_store = \"vault\"".into(), "secret_store"),
    ];
    for (name, text, needle) in cases {
        let path = home.path().join(format!("{}.toml", name.replace(' ', "_")));
        let data = home.path().join("d");
        std::fs::write(&path, format!("data_dir = \"{}\"\n{text}", data.display())).unwrap();
        let (ok, _, err) = run(home.path(), &["serve", "--config", path.to_str().unwrap()], None);
        assert!(!ok, "{name}: should fail");
        assert!(err.contains(needle), "{name}: stderr should name {needle}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one message: {err}");
    }
    // A missing config file named on the command line.
    let (ok, _, err) = run(home.path(), &["serve", "--config", "/nonexistent/hs.toml"], None);
    assert!(!ok && err.contains("/nonexistent/hs.toml"), "{err}");
}

#[test]
fn unusable_data_dir_and_busy_port_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let path = home.path().join("hs.toml");
    std::fs::write(&path, format!("data_dir = \"{}/sub\"\nsecret_store = \"file\"", file.display())).unwrap();
    let (ok, _, err) = run(home.path(), &["serve", "--config", path.to_str().unwrap()], None);
    assert!(!ok && err.contains("data_dir") && err.contains("a-file"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    std::fs::write(
        &path,
        format!("data_dir = \"{}\"\nsecret_store = \"file\"\n[[listeners]]\nport = {port}\nbind_addresses = [\"127.0.0.1\"]", home.path().join("d").display()),
    )
    .unwrap();
    let (ok, _, err) = run(home.path(), &["serve", "--config", path.to_str().unwrap()], None);
    assert!(!ok && err.contains("listeners") && err.contains(&port.to_string()), "{err}");
}

#[test]
fn unknown_keys_are_warned_about_and_the_server_still_starts() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "enable_regstration = true");
    let mut p = spawn(home.path(), &["serve", "--config", cfg.to_str().unwrap()], &[]);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let warnings: Vec<String> = p.stderr.try_iter().collect();
    assert!(warnings.iter().any(|l| l.contains("unknown key `enable_regstration`")), "{warnings:?}");
}

#[test]
fn show_registration_secret_prints_the_generated_secret_stably() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "");
    let cfg = cfg.to_str().unwrap();
    let (ok, a, err) = run(home.path(), &["show-registration-secret", "--config", cfg], None);
    assert!(ok, "{err}");
    let (_, b, _) = run(home.path(), &["show-registration-secret", "--config", cfg], None);
    assert_eq!(a, b);
    assert!(a.trim().len() >= 32);
    let mode = std::fs::metadata(home.path().join("data/secrets/registration_shared_secret")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn without_a_keychain_auto_falls_back_to_files_says_so_and_keeps_the_key() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("secret_store = \"file\"", "secret_store = \"auto\"");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let key_of = |base: &str| -> Value {
        let v: Value = client().get(format!("{base}/_matrix/key/v2/server")).send().unwrap().json().unwrap();
        v["verify_keys"].clone()
    };
    // `spawn` removes DBUS_SESSION_BUS_ADDRESS, so no keychain answers.
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let banner = p.stdout.join("\n");
    assert!(banner.contains("Secrets:      0600 files in"), "{banner}");
    let first = key_of(&p.base);
    drop(p);
    assert!(home.path().join("data/secrets/signing_key").exists());
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(key_of(&p.base), first, "a restart must never produce a new signing key");
}

#[test]
fn the_binary_prints_the_dashboard_link_and_restarts_itself_to_apply_dashboard_settings() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), OPEN);
    let p = spawn(home.path(), &["serve", "--config", cfg.to_str().unwrap()], &[]);
    let link = p
        .stdout
        .iter()
        .find_map(|l| l.trim().strip_prefix("http://").filter(|l| l.contains("/_hearth/#token=")))
        .expect("the banner has the dashboard link");
    let (addr, token) = link.split_once("/_hearth/#token=").unwrap();
    assert_eq!(register(&p.base, "before"), 200);
    let r = client()
        .put(format!("http://{addr}/_hearth/admin/v1/settings"))
        .bearer_auth(token)
        .json(&serde_json::json!({"registration": "invite"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same address answers again once the restart is through, now refusing sign-ups.
    let mut refused = false;
    for _ in 0..100 {
        // A request may meet the old server closing its connections: not an answer yet.
        if try_register(&p.base, "after").is_ok_and(|st| st == reqwest::StatusCode::FORBIDDEN) {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "registration is closed after the restart");
    assert_eq!(login(&p.base, "before", "pw-long-enough"), 200);
}

/// The admin key is printed at the first start only (terminals and journald keep what is
/// printed), on request with `hearth admin-url`, and `hearth rotate-admin-key` replaces it: the
/// running server refuses the old key at once.
#[test]
fn the_admin_key_is_printed_once_and_can_be_replaced_while_the_server_runs() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "");
    let cfg = cfg.to_str().unwrap();
    let key_in = |lines: &[String]| {
        lines.iter().find_map(|l| l.split_once("/_hearth/#token=").map(|(_, k)| k.trim().to_owned()))
    };
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    let first = key_in(&p.stdout).expect("the first start prints the link with the key");
    drop(p);
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    assert_eq!(key_in(&p.stdout), None, "later starts do not: {:?}", p.stdout);
    assert!(p.stdout.iter().any(|l| l.contains("hearth admin-url")), "{:?}", p.stdout);
    let admin = p
        .stdout
        .iter()
        .find_map(|l| l.split_once("dashboard (on this computer): ").map(|(_, u)| u.trim().to_owned()))
        .expect("the page's address is printed");
    let status =
        |key: &str| client().get(format!("{admin}admin/v1/status")).bearer_auth(key).send().unwrap().status().as_u16();
    assert_eq!(status(&first), 200);

    let (ok, out, err) = run(home.path(), &["admin-url", "--config", cfg], None);
    assert!(ok, "{err}");
    assert_eq!(key_in(&[out]).as_deref(), Some(first.as_str()), "admin-url shows the same key");

    let (ok, out, err) = run(home.path(), &["rotate-admin-key", "--config", cfg], None);
    assert!(ok, "{err}");
    let second = key_in(&[out]).expect("the new link");
    assert_ne!(second, first);
    assert_eq!(status(&first), 401, "the old key stops working on the running server");
    assert_eq!(status(&second), 200);
}

/// Every log line of a request says which request: method, path (never the query, where an
/// access token may be), request ID and user; the ID comes back in the response.
#[test]
fn log_lines_name_the_request_and_the_user() {
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("logs");
    let extra = format!("{OPEN}\nlog_level = \"info,tower_http=debug\"\nlog_dir = \"{}\"", logs.display());
    let cfg = write_config(home.path(), &extra);
    let p = spawn(home.path(), &["serve", "--config", cfg.to_str().unwrap()], &[("RUST_LOG", "info,tower_http=debug")]);
    assert_eq!(register(&p.base, "logged"), 200);
    let token = access_token(&p.base, "logged", "pw-long-enough");
    let r = client()
        .get(format!("{}/_matrix/client/v3/account/whoami?access_token={token}", p.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-42", "the ID comes back");
    let generated = client().get(format!("{}/_matrix/client/versions", p.base)).send().unwrap();
    assert!(!generated.headers()["x-request-id"].is_empty(), "a request without one gets one");

    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        if text.contains("trace-me-42") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line =
        text.lines().find(|l| l.contains("trace-me-42")).unwrap_or_else(|| panic!("no line for the request:\n{text}"));
    assert!(!line.contains('\x1b'), "no terminal colour codes in the file: {line}");
    for part in ["method=GET", "path=/_matrix/client/v3/account/whoami", "user=@logged:proc.test"] {
        assert!(line.contains(part), "{part} missing in: {line}");
    }
    assert!(!text.contains(&token), "the access token is never logged");
}
