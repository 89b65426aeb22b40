//! Driving the real `hearth` binary: spawn it with isolated OS folders, wait for its banner,
//! and talk to it over blocking HTTP.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_hearth");

pub struct Proc {
    pub child: Child,
    pub base: String,
    pub stdout: Vec<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment that keeps the binary's OS folders inside `home`.
pub fn isolated(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("HEARTH_SERVER_NAME")
        .env_remove("HEARTH_DATA_DIR")
        .env_remove("HEARTH_PUBLIC_BASEURL")
        .env_remove("HEARTH_LISTEN")
        // Tests run side by side: each admin listener takes a free port.
        .env("HEARTH_ADMIN_LISTEN", "127.0.0.1:0")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // The allocator as the binary tunes it, whatever the environment tests run in.
        .env_remove("GLIBC_TUNABLES")
        .env_remove("MALLOC_ARENA_MAX")
        .env("RUST_LOG", "warn");
}

/// Starts `hearth` with `args` and waits for the banner; returns it with the bound address.
pub fn spawn(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    isolated(&mut cmd, home);
    cmd.args(args).envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn hearth");
    let out = BufReader::new(child.stdout.take().unwrap());
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = etx.send(line);
        }
    });
    let mut stdout = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.starts_with("Press Ctrl+C");
                stdout.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let errs: Vec<String> = erx.try_iter().collect();
                panic!("hearth did not start: stdout {stdout:?} stderr {errs:?}");
            }
        }
    }
    let addr = stdout
        .iter()
        .find_map(|l| l.trim().strip_prefix("Listening on: "))
        .expect("banner names the address")
        .trim_end_matches('/')
        .to_owned();
    Proc { child, base: addr, stdout, stderr: erx }
}

/// Runs `hearth` to completion; returns (success, stdout, stderr).
pub fn run(home: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    isolated(&mut cmd, home);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `hearth` to completion with a throwaway home folder (the config given in `args` says
/// where its data is); returns (success, stdout, stderr).
pub fn hearth(args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    run(home.path(), args, None)
}

/// Every rate limit far above what a test sends (tests about a limit set theirs in `extra`).
const LAX_LIMITS: &str = include_str!("../../../tests/lax_rate_limits.toml");

pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("homeserver.toml");
    let text = format!(
        "server_name = \"proc.test\"\ndata_dir = \"{}\"\nsecret_store = \"file\"\n{LAX_LIMITS}\n{extra}\n[admin]\nport = 0\n[[listeners]]\nport = 0\nbind_addresses = [\"127.0.0.1\"]\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

pub fn register(base: &str, user: &str) -> reqwest::StatusCode {
    try_register(base, user).unwrap()
}

/// `register`, with a connection error as an error (a server restarting in between).
pub fn try_register(base: &str, user: &str) -> reqwest::Result<reqwest::StatusCode> {
    let c = client();
    let url = format!("{base}/_matrix/client/v3/register");
    let first: Value = c.post(&url).json(&json!({"username": user, "password": "pw-long-enough"})).send()?.json()?;
    Ok(c.post(&url)
        .json(&json!({"username": user, "password": "pw-long-enough", "auth": {"type": "m.login.dummy", "session": first["session"]}}))
        .send()?
        .status())
}

fn login_response(base: &str, user: &str, pw: &str) -> reqwest::blocking::Response {
    client()
        .post(format!("{base}/_matrix/client/v3/login"))
        .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": pw}))
        .send()
        .unwrap()
}

pub fn login(base: &str, user: &str, pw: &str) -> reqwest::StatusCode {
    login_response(base, user, pw).status()
}

/// Logs in and returns the access token.
pub fn access_token(base: &str, user: &str, pw: &str) -> String {
    let v: Value = login_response(base, user, pw).json().unwrap();
    v["access_token"].as_str().expect("login succeeded").to_owned()
}
