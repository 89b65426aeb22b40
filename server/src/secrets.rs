//! Where the server's secrets live: the OS keychain through `keyring`, or 0600 files in
//! `data_dir/secrets` where no keychain answers (a headless Linux box, CI).
//!
//! This is one of the few real boundaries, so it is a trait. Entries are namespaced by the data
//! folder, so two servers on one machine (tests, or a second profile) never share a key.
//! Reads consult both stores, so a server whose keychain disappears (or appears) between two runs
//! still finds the key it had: a restart must never produce a new signing key.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::config::SecretStoreChoice;

const SERVICE: &str = "org.hearth.homeserver";

pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>>;
    fn set(&self, name: &str, value: &[u8]) -> anyhow::Result<()>;
    /// For the log and the dashboard: "OS keychain" or "files in ...".
    fn describe(&self) -> String;
}

/// 0600 files, one per secret, in a 0700 folder.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl SecretStore for FileStore {
    fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(name)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading secret {}", self.path(name).display())),
        }
    }

    fn set(&self, name: &str, value: &[u8]) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        // Write to a temporary file, fsync, then rename: a crash leaves the old or the new secret,
        // never half of one.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).with_context(|| format!("writing secret {}", tmp.display()))?;
            f.write_all(value)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.path(name))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("0600 files in {}", self.dir.display())
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Whether Linux's Secret Service certainly cannot be reached: no session bus where D-Bus
/// clients look for it (the address in `DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`),
/// as on a headless server run as a system service. Why ask first: even a failed connection
/// attempt leaves the D-Bus library's helper thread behind, and it wakes twice a second for the
/// life of the process.
#[cfg(all(unix, not(any(target_os = "macos", target_os = "ios", target_os = "android"))))]
fn no_session_bus() -> bool {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        return false;
    }
    let runtime_dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir),
        // The D-Bus library's own default: /run/user/<uid> (/proc/self belongs to our uid).
        None => match std::fs::metadata("/proc/self") {
            Ok(m) => PathBuf::from(format!("/run/user/{}", m.uid())),
            Err(_) => return false,
        },
    };
    !runtime_dir.join("bus").exists()
}

#[cfg(not(all(unix, not(any(target_os = "macos", target_os = "ios", target_os = "android")))))]
fn no_session_bus() -> bool {
    false
}

/// The OS keychain (macOS Keychain, Windows Credential Manager, Secret Service on Linux).
pub struct KeychainStore {
    /// Distinguishes this server's entries from another server's on the same machine.
    namespace: String,
}

impl KeychainStore {
    pub fn new(data_dir: &Path) -> Self {
        let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
        Self { namespace: hex::encode(&digest[..8]) }
    }

    fn entry(&self, name: &str) -> anyhow::Result<keyring::Entry> {
        if no_session_bus() {
            bail!(
                "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus), so no Secret Service"
            );
        }
        keyring::Entry::new(SERVICE, &format!("{}/{name}", self.namespace))
            .map_err(|e| anyhow::anyhow!("keychain: {e}"))
    }

    /// A write-read-delete round trip: the keychain is usable only if all three work.
    pub fn probe(&self) -> anyhow::Result<()> {
        let entry = self.entry("probe")?;
        let value = b"hearth-probe";
        entry.set_secret(value).map_err(|e| anyhow::anyhow!("keychain write: {e}"))?;
        let back = entry.get_secret().map_err(|e| anyhow::anyhow!("keychain read: {e}"))?;
        entry.delete_credential().map_err(|e| anyhow::anyhow!("keychain delete: {e}"))?;
        if back != value {
            bail!("keychain returned a different value than was stored");
        }
        Ok(())
    }
}

impl SecretStore for KeychainStore {
    fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.entry(name)?.get_secret() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("keychain read of {name}: {e}")),
        }
    }

    fn set(&self, name: &str, value: &[u8]) -> anyhow::Result<()> {
        self.entry(name)?.set_secret(value).map_err(|e| anyhow::anyhow!("keychain write of {name}: {e}"))
    }

    fn describe(&self) -> String {
        "the OS keychain".to_owned()
    }
}

/// The chosen store plus the other one, consulted on reads so a key is never lost when the
/// keychain comes or goes between runs.
pub struct Secrets {
    primary: Box<dyn SecretStore>,
    fallback: Option<Box<dyn SecretStore>>,
}

impl Secrets {
    /// Chooses the store as configured. `auto` probes the keychain once; the log says which won.
    /// Blocking (keychain calls talk D-Bus): call from `spawn_blocking`.
    pub fn open(choice: SecretStoreChoice, data_dir: &Path) -> anyhow::Result<Arc<Secrets>> {
        let files = FileStore::new(data_dir.join("secrets"));
        let keychain = KeychainStore::new(data_dir);
        let secrets = match choice {
            SecretStoreChoice::File => Secrets { primary: Box::new(files), fallback: Some(Box::new(keychain)) },
            SecretStoreChoice::Keychain => {
                keychain.probe().context(
                    "secret_store = \"keychain\" but the OS keychain does not answer; unlock it, or set secret_store = \"auto\" or \"file\"",
                )?;
                Secrets { primary: Box::new(keychain), fallback: Some(Box::new(files)) }
            }
            SecretStoreChoice::Auto => match keychain.probe() {
                Ok(()) => Secrets { primary: Box::new(keychain), fallback: Some(Box::new(files)) },
                Err(e) => {
                    tracing::info!(reason = %e, "no usable OS keychain; keeping secrets in files");
                    Secrets { primary: Box::new(files), fallback: Some(Box::new(keychain)) }
                }
            },
        };
        tracing::info!(store = %secrets.primary.describe(), "secret store");
        Ok(Arc::new(secrets))
    }

    pub fn describe(&self) -> String {
        self.primary.describe()
    }

    pub fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(v) = self.primary.get(name)? {
            return Ok(Some(v));
        }
        if let Some(fallback) = &self.fallback {
            match fallback.get(name) {
                Ok(Some(v)) => {
                    tracing::info!(secret = name, from = %fallback.describe(), "found secret in the other store");
                    return Ok(Some(v));
                }
                Ok(None) => {}
                // The fallback keychain may be absent altogether; that is not an error here.
                Err(e) => tracing::debug!(error = %e, "fallback secret store unavailable"),
            }
        }
        Ok(None)
    }

    /// Returns the secret, creating it with `make` on first use.
    pub fn get_or_create(&self, name: &str, make: impl FnOnce() -> Vec<u8>) -> anyhow::Result<Vec<u8>> {
        Ok(self.get_or_create_new(name, make)?.0)
    }

    /// Like `get_or_create`, and says whether the secret was made just now.
    pub fn get_or_create_new(&self, name: &str, make: impl FnOnce() -> Vec<u8>) -> anyhow::Result<(Vec<u8>, bool)> {
        if let Some(v) = self.get(name)? {
            return Ok((v, false));
        }
        let v = make();
        self.set(name, &v)?;
        Ok((v, true))
    }

    /// Stores `value` as `name`, replacing what was there.
    pub fn set(&self, name: &str, value: &[u8]) -> anyhow::Result<()> {
        self.primary.set(name, value)?;
        // Read back: a keychain that silently drops writes must not cost us a key per restart.
        match self.primary.get(name)? {
            Some(back) if back == value => Ok(()),
            _ => bail!("the secret store did not keep {name}; check {}", self.primary.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("secrets"));
        assert_eq!(store.get("k").unwrap(), None);
        store.set("k", b"value").unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"value"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/k")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("secrets")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn get_or_create_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(SecretStoreChoice::File, dir.path()).unwrap();
        let a = s.get_or_create("x", || b"first".to_vec()).unwrap();
        let b = s.get_or_create("x", || b"second".to_vec()).unwrap();
        assert_eq!(a, b);
    }
}
