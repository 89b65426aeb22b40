//! Synapse's own `register_new_matrix_user` script (matrix-synapse from PyPI) creates accounts on
//! a running `hearth` binary, unchanged. `scripts/test.sh` installs the script into a venv and
//! points HEARTH_SYNAPSE_VENV at it.

mod common;

use std::process::Command;

use common::binary::{access_token, client, login, run, spawn, write_config};
use serde_json::json;

fn script() -> std::path::PathBuf {
    let venv = std::env::var("HEARTH_SYNAPSE_VENV")
        .expect("HEARTH_SYNAPSE_VENV names a venv with matrix-synapse (scripts/test.sh sets it)");
    let path = std::path::Path::new(&venv).join("bin/register_new_matrix_user");
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn register_new_matrix_user(args: &[&str]) -> (bool, String) {
    let out = Command::new(script()).args(args).output().expect("run register_new_matrix_user");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
#[ignore = "needs matrix-synapse from PyPI (scripts/test.sh installs it)"]
fn register_new_matrix_user_creates_an_admin_on_a_running_hearth() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "");
    let cfg = cfg.to_str().unwrap();
    let p = spawn(home.path(), &["serve", "--config", cfg], &[]);
    // The generated secret, as an admin would read it.
    let (ok, secret, err) = run(home.path(), &["show-registration-secret", "--config", cfg], None);
    assert!(ok, "{err}");
    let secret = secret.trim();

    let (ok, out) = register_new_matrix_user(&["-u", "admin", "-p", "correct horse", "-a", "-k", secret, &p.base]);
    assert!(ok, "register_new_matrix_user failed: {out}");
    assert!(out.contains("Success"), "{out}");
    assert_eq!(login(&p.base, "admin", "correct horse"), 200);

    // The new user really is an admin: the admin API answers it.
    let r = client()
        .post(format!("{}/_synapse/admin/v1/registration_tokens/new", p.base))
        .bearer_auth(access_token(&p.base, "admin", "correct horse"))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // A non-admin, then the duplicate cases the script handles.
    let (ok, out) =
        register_new_matrix_user(&["-u", "kid", "-p", "pw-long-enough", "--no-admin", "-k", secret, &p.base]);
    assert!(ok, "{out}");
    let (ok, out) =
        register_new_matrix_user(&["-u", "kid", "-p", "pw-long-enough", "--no-admin", "-k", secret, &p.base]);
    assert!(!ok, "a duplicate must fail: {out}");
    let (ok, out) = register_new_matrix_user(&[
        "-u",
        "kid",
        "-p",
        "pw-long-enough",
        "--no-admin",
        "--exists-ok",
        "-k",
        secret,
        &p.base,
    ]);
    assert!(ok, "--exists-ok accepts M_USER_IN_USE: {out}");

    // A wrong secret creates nobody.
    let (ok, out) =
        register_new_matrix_user(&["-u", "mallory", "-p", "pw-long-enough", "--no-admin", "-k", "wrong", &p.base]);
    assert!(!ok, "{out}");
    assert_eq!(login(&p.base, "mallory", "pw-long-enough"), 403);
}
