//! Backups and restores (`hearth backup`, `hearth restore`), with the server running or not.
//!
//! A backup is a folder in the output folder, `hearth-<server name>-<UTC time>/`, holding
//! `hearth.db` (one consistent snapshot, SQLite's `VACUUM INTO`: a read transaction, so writers
//! go on meanwhile), `secrets/` (the signing key, the admin key, the registration and TURN
//! secrets, the ACME account: read from wherever they are kept, the OS keychain included), the
//! config file when there is one, and `manifest.json` (versions, the schema, each file's size
//! and SHA-256). Media files go into `media/` beside the backups, named by their hash like in
//! the data folder, so each file is copied once across all backups in that folder.
//!
//! A backup is written under a `.partial-` name and renamed when complete: a crash or kill
//! leaves no folder that looks like a good backup. A restore checks every hash and the schema
//! before it writes anything, and writes the database last.
//!
//! With a passphrase, every file is encrypted with age (`.age` added to its name, the manifest
//! included), to a key of the output folder (`backup-key.age`: an age X25519 identity, itself
//! encrypted with the passphrase by scrypt). So the slow passphrase step runs once per backup,
//! not once per media file, and all backups in the folder share the media store. Encrypted
//! media files are named by a keyed hash of their content hash, so a copy of the folder (a cloud
//! provider's) cannot tell whether it holds a given picture. Plain text of an encrypted backup
//! never touches the output folder: the database snapshot is taken in the data folder.

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use age::secrecy::{ExposeSecret, SecretString};

use crate::{
    Config,
    secrets::Secrets,
    storage::{self, media_files::MediaFiles},
};

/// The layout this binary writes and reads.
const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "hearth.db";
/// The output folder's key for encrypted backups.
const FOLDER_KEY: &str = "backup-key.age";
/// What encrypted files' names end with.
const SEALED: &str = ".age";

/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 8;

/// A backup's passphrase: the first line of `path` (a file, so it stays out of the shell's
/// history and the process list).
pub fn read_passphrase(path: &Path) -> anyhow::Result<SecretString> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.chars().count() < MIN_PASSPHRASE {
        bail!("the passphrase in {} must be at least {MIN_PASSPHRASE} characters", path.display());
    }
    Ok(SecretString::from(line.to_owned()))
}

/// Whether `passphrase` opens the key of the folder `dir` (true when it has none yet).
pub fn check_passphrase(dir: &Path, passphrase: &SecretString) -> anyhow::Result<()> {
    if dir.join(FOLDER_KEY).exists() {
        Seal::open(dir, passphrase, false)?;
    }
    Ok(())
}

/// A finished backup in a folder.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub name: String,
    pub created_ms: i64,
    pub encrypted: bool,
}

/// The finished backups of `server_name` in `dir`, oldest first.
pub fn list(dir: &Path, server_name: &str) -> Vec<Listed> {
    let prefix = format!("hearth-{server_name}-");
    let mut found: Vec<Listed> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let created_ms = parse_stamp(name.strip_prefix(&prefix)?)?;
            let encrypted = e.path().join(format!("{MANIFEST}{SEALED}")).exists();
            (encrypted || e.path().join(MANIFEST).exists()).then_some(Listed { name, created_ms, encrypted })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Keeps the newest `keep` backups of `server_name` in `dir`, then removes media files that no
/// backup left in the folder lists (when every manifest there can be read: an encrypted one
/// needs the folder's key opened with its passphrase). Answers the backups removed.
pub async fn prune(dir: &Path, server_name: &str, keep: usize, key: &FolderKey) -> anyhow::Result<Vec<String>> {
    let (dir, server_name, seal) = (dir.to_path_buf(), server_name.to_owned(), key.0.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let ours = list(&dir, &server_name);
        let mut removed = Vec::new();
        for old in &ours[..ours.len().saturating_sub(keep)] {
            std::fs::remove_dir_all(dir.join(&old.name)).with_context(|| format!("removing {}", old.name))?;
            removed.push(old.name.clone());
        }
        let seal = matches!(*seal, Seal::Age { .. }).then_some(&*seal);
        let plain = Seal::Plain;
        // Every backup in the folder, any server's: they share the media store.
        let mut wanted = std::collections::HashSet::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_dir() || name == "media" {
                continue;
            }
            let (path, seal) = if entry.path().join(MANIFEST).exists() {
                (entry.path().join(MANIFEST), &plain)
            } else if entry.path().join(format!("{MANIFEST}{SEALED}")).exists() {
                match seal {
                    Some(s) => (entry.path().join(format!("{MANIFEST}{SEALED}")), s),
                    None => return Ok(removed),
                }
            } else {
                continue;
            };
            let mut text = Vec::new();
            if seal.read(&path, &mut text).is_err() {
                // A manifest this passphrase does not open (or a damaged one): its media stay.
                return Ok(removed);
            }
            let manifest: Manifest = match serde_json::from_slice(&text) {
                Ok(m) => m,
                Err(_) => return Ok(removed),
            };
            wanted.extend(manifest.media.into_iter().map(|m| m.path));
        }
        let store = dir.join("media");
        for prefix in std::fs::read_dir(&store).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(prefix.path())?.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if !wanted.contains(&name) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
        Ok(removed)
    })
    .await?
}

/// The time in a backup's name (`YYYYMMDD-HHMMSS`, UTC), as ms since the epoch.
fn parse_stamp(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    if b.len() != 15 || b[8] != b'-' || !stamp.bytes().enumerate().all(|(i, c)| i == 8 || c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| stamp[r].parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from civil (Howard Hinnant's algorithm, the inverse of `utc_stamp`'s).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

/// How a backup's files are stored: as they are, or encrypted to the folder's key.
enum Seal {
    Plain,
    Age { identity: age::x25519::Identity, names: [u8; 32] },
}

impl Seal {
    /// The folder's key, opened with the passphrase; made when `create` and there is none.
    fn open(folder: &Path, passphrase: &SecretString, create: bool) -> anyhow::Result<Seal> {
        let path = folder.join(FOLDER_KEY);
        let identity = match std::fs::read(&path) {
            Ok(sealed) => {
                let passphrase_id = age::scrypt::Identity::new(passphrase.clone());
                let opened = age::decrypt(&passphrase_id, &sealed).map_err(|e| match e {
                    age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => anyhow::anyhow!(
                        "the passphrase does not open {}: it is not the one these backups were made with",
                        path.display()
                    ),
                    other => anyhow::anyhow!("{} is damaged: {other}", path.display()),
                })?;
                let text = String::from_utf8(opened).context("the folder's key is damaged")?;
                text.trim()
                    .parse::<age::x25519::Identity>()
                    .map_err(|e| anyhow::anyhow!("the folder's key is damaged: {e}"))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let identity = age::x25519::Identity::generate();
                let recipient = age::scrypt::Recipient::new(passphrase.clone());
                let sealed = age::encrypt(&recipient, identity.to_string().expose_secret().as_bytes())
                    .map_err(|e| anyhow::anyhow!("encrypting the folder's key: {e}"))?;
                write_synced(&path, &sealed)?;
                identity
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "{} is missing: encrypted backups cannot be opened without the key file beside them",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let names: [u8; 32] = Sha256::new()
            .chain_update(b"hearth backup media names\0")
            .chain_update(identity.to_string().expose_secret().as_bytes())
            .finalize()
            .into();
        Ok(Seal::Age { identity, names })
    }

    fn stored(&self, rel: &str) -> String {
        match self {
            Seal::Plain => rel.to_owned(),
            Seal::Age { .. } => format!("{rel}{SEALED}"),
        }
    }

    /// The name a media file has in the backups' store.
    fn media_name(&self, sha256: &str) -> String {
        match self {
            Seal::Plain => sha256.to_owned(),
            Seal::Age { names, .. } => {
                use hmac::{Hmac, Mac};
                let mut mac = Hmac::<Sha256>::new_from_slice(names).expect("any key length");
                mac.update(sha256.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Writes `from` into `to` (encrypted when sealing), synced; answers the plain size and hash.
    fn write(&self, mut from: impl Read, to: &Path) -> anyhow::Result<(u64, String)> {
        use std::io::Write;
        let file = std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
        let file = storage::backup::SyncedAsWritten::new(file);
        let mut hashing = Hashing::default();
        let file = match self {
            Seal::Plain => {
                let mut out = Tee { inner: file, hash: &mut hashing };
                std::io::copy(&mut from, &mut out)?;
                out.inner
            }
            Seal::Age { identity, .. } => {
                let recipient = identity.to_public();
                let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .map_err(|e| anyhow::anyhow!("encrypting: {e}"))?;
                let writer = encryptor.wrap_output(file)?;
                let mut out = Tee { inner: writer, hash: &mut hashing };
                std::io::copy(&mut from, &mut out)?;
                out.inner.flush()?;
                out.inner.finish()?
            }
        };
        file.finish()?;
        Ok(hashing.done())
    }

    /// Reads back what `write` stored at `path`: its plain size and hash. A damaged or changed
    /// encrypted file fails here (age authenticates every chunk and the end).
    fn read(&self, path: &Path, mut sink: impl std::io::Write) -> anyhow::Result<(u64, String)> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut hashing = Hashing::default();
        let mut out = Tee { inner: &mut sink, hash: &mut hashing };
        match self {
            Seal::Plain => {
                let mut file = file;
                std::io::copy(&mut file, &mut out)?;
            }
            Seal::Age { identity, .. } => {
                let decryptor = age::Decryptor::new_buffered(file).map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut reader = decryptor
                    .decrypt(std::iter::once(identity as &dyn age::Identity))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                std::io::copy(&mut reader, &mut out)?;
            }
        }
        Ok(hashing.done())
    }
}

/// A running SHA-256 and byte count.
#[derive(Default)]
struct Hashing {
    hasher: Sha256,
    size: u64,
}

impl Hashing {
    fn done(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

/// Writes through to `inner`, hashing what passes.
struct Tee<'a, W> {
    inner: W,
    hash: &'a mut Hashing,
}

impl<W: std::io::Write> std::io::Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.hasher.update(&buf[..n]);
        self.hash.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The secrets a server cannot be rebuilt without (the signing key above all: other servers
/// know it, and events are signed with it).
pub const SECRETS: &[&str] = &[
    super::signing::SECRET_NAME,
    super::admin_key::SECRET_NAME,
    crate::SHARED_SECRET_NAME,
    super::turn::SECRET_NAME,
    super::acme::ACCOUNT_SECRET,
];

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub hearth_version: String,
    /// The database's `schema_compat`: a binary that understands less refuses it.
    pub schema_compat: i64,
    pub server_name: String,
    pub created_ms: i64,
    pub files: Vec<Entry>,
    /// Media files, in `../media/` (named by their hash).
    pub media: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    /// A path inside the backup (files) or the content hash (media).
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Makes a backup of the server `config` describes in `out` (created when missing); answers the
/// backup's folder. `config_file` is copied into it when given; with `passphrase` every file is
/// encrypted (see the module's doc).
pub async fn backup(
    config: &Config,
    config_file: Option<&Path>,
    out: &Path,
    passphrase: Option<&SecretString>,
) -> anyhow::Result<PathBuf> {
    let key = FolderKey::open(out, passphrase).await?;
    backup_with(config, config_file, out, &key).await
}

/// How the backups of one folder are stored, opened once (the passphrase's scrypt step is slow
/// on purpose) and used for a backup and the clean-up after it.
pub struct FolderKey(Arc<Seal>);

impl FolderKey {
    /// Opens (with a passphrase: makes when missing) the key of the folder `out`, creating the
    /// folder. Without a passphrase, a folder of encrypted backups is refused.
    pub async fn open(out: &Path, passphrase: Option<&SecretString>) -> anyhow::Result<FolderKey> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let seal = match passphrase {
            Some(p) => {
                let (out, p) = (out.to_path_buf(), p.clone());
                tokio::task::spawn_blocking(move || Seal::open(&out, &p, true)).await??
            }
            // Encrypted backups are kept where others may read them (a synced folder): a plain
            // one must not land among them by mistake.
            None if out.join(FOLDER_KEY).exists() => bail!(
                "{} holds encrypted backups ({FOLDER_KEY}): give the passphrase (--passphrase-file), or choose another folder for backups without encryption",
                out.display()
            ),
            None => Seal::Plain,
        };
        Ok(FolderKey(Arc::new(seal)))
    }
}

/// [`backup`] with the folder's key opened already.
pub async fn backup_with(
    config: &Config,
    config_file: Option<&Path>,
    out: &Path,
    key: &FolderKey,
) -> anyhow::Result<PathBuf> {
    let data = config.data_dir().to_path_buf();
    let db_path = data.join(DATABASE);
    if !db_path.exists() {
        bail!("there is no database at {} to back up (check data_dir)", db_path.display());
    }
    let seal = key.0.clone();
    let now = storage::now_ms();
    let stamp = utc_stamp(now / 1000);
    let name = format!("hearth-{}-{stamp}", config.server_name);
    let partial = out.join(format!(".partial-{name}"));
    let done = out.join(&name);
    if done.exists() {
        bail!("{} exists already: wait a second and try again", done.display());
    }
    // One backup at a time per data folder (the snapshot's place below is fixed).
    let lock = std::fs::File::create(data.join(".backup.lock"))?;
    if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
        bail!("another backup of this server is being made: wait for it to finish");
    }
    // So a `.partial-` folder of this server is what a backup that was stopped (killed, the
    // computer switched off) left: nothing will finish it.
    let stale = format!(".partial-hearth-{}-", config.server_name);
    for entry in std::fs::read_dir(out)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stale) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    std::fs::create_dir_all(partial.join("secrets"))?;

    // The database first: what it refers to (media) is on disk before its rows are committed.
    // An encrypted backup's snapshot is taken in the data folder and then stored encrypted, so
    // no plain copy is ever written where the backups are.
    let (size, sha256, schema_compat) = match &*seal {
        Seal::Plain => {
            let snapshot = partial.join(DATABASE);
            let compat = storage::backup::snapshot(&db_path, &snapshot).await?;
            let seal = seal.clone();
            let (size, sha256) = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, String)> {
                std::fs::File::open(&snapshot)?.sync_all()?;
                seal.read(&snapshot, std::io::sink())
            })
            .await??;
            (size, sha256, compat)
        }
        Seal::Age { .. } => {
            let snapshot = data.join(".backup-snapshot.db");
            let _ = std::fs::remove_file(&snapshot);
            let taken = storage::backup::snapshot(&db_path, &snapshot).await;
            let stored = match taken {
                Ok(compat) => {
                    let (seal, from, to) = (seal.clone(), snapshot.clone(), partial.join(seal.stored(DATABASE)));
                    tokio::task::spawn_blocking(move || seal.write(std::fs::File::open(&from)?, &to))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|r| r)
                        .map(|(size, sha256)| (size, sha256, compat))
                }
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&snapshot);
            stored?
        }
    };
    let mut files = vec![Entry { path: DATABASE.to_owned(), size, sha256 }];

    let secrets = {
        let (choice, dir) = (config.secret_store, data.clone());
        tokio::task::spawn_blocking(move || Secrets::open(choice, &dir)).await??
    };
    for name in SECRETS {
        let value = {
            let s: Arc<Secrets> = secrets.clone();
            tokio::task::spawn_blocking(move || s.get(name)).await??
        };
        if let Some(bytes) = value {
            let rel = format!("secrets/{name}");
            let to = partial.join(seal.stored(&rel));
            let (size, sha256) = seal.write(bytes.as_slice(), &to)?;
            private(&to)?;
            files.push(Entry { path: rel, size, sha256 });
        }
    }
    if let Some(file) = config_file {
        let from = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
        let (size, sha256) = seal.write(from, &partial.join(seal.stored("homeserver.toml")))?;
        files.push(Entry { path: "homeserver.toml".to_owned(), size, sha256 });
    }

    let media = copy_media(&data, &out.join("media"), seal.clone()).await?;
    let manifest = Manifest {
        format: FORMAT,
        hearth_version: crate::VERSION.to_owned(),
        schema_compat,
        server_name: config.server_name.to_string(),
        created_ms: now,
        files,
        media,
    };
    let text = serde_json::to_vec_pretty(&manifest)?;
    seal.write(text.as_slice(), &partial.join(seal.stored(MANIFEST)))?;
    sync_dir(&partial.join("secrets"))?;
    sync_dir(&partial)?;
    std::fs::rename(&partial, &done)?;
    sync_dir(out)?;
    Ok(done)
}

/// Copies the media files not yet in `dest` (same layout; names are content hashes, or keyed
/// hashes of them when sealing); answers every file's entry.
async fn copy_media(data: &Path, dest: &Path, seal: Arc<Seal>) -> anyhow::Result<Vec<Entry>> {
    let (data, dest) = (data.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Entry>> {
        let store = MediaFiles::open(&data)?;
        let mut entries = Vec::new();
        for (sha256, path) in store.all()? {
            let stored = seal.media_name(&sha256);
            let target = MediaFiles::layout(&dest, &stored)?;
            let size = std::fs::metadata(&path)?.len();
            // A file is only ever renamed into place whole, so one that is there is complete
            // (and a plain one is checked by its size too).
            let present = match &*seal {
                Seal::Plain => std::fs::metadata(&target).map(|m| m.len()).ok() == Some(size),
                Seal::Age { .. } => target.exists(),
            };
            if !present {
                std::fs::create_dir_all(target.parent().expect("a file in a folder"))?;
                let tmp = target.with_extension("partial");
                seal.write(std::fs::File::open(&path)?, &tmp)?;
                std::fs::rename(&tmp, &target)?;
            }
            entries.push(Entry { path: stored, size, sha256 });
        }
        Ok(entries)
    })
    .await?
}

/// `YYYYMMDD-HHMMSS` in UTC (Howard Hinnant's days-to-civil algorithm).
fn utc_stamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Only the owner may read a secret's file.
fn private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// What a restore put back.
pub struct Restored {
    pub server_name: String,
    pub media: usize,
    /// When the backup's server name differs from the config's: the backup's is kept in the
    /// database's settings (people's addresses end with it), so it goes over the config's.
    pub name_from_backup: bool,
}

/// A backup found in a folder, for choosing one to restore.
#[derive(Debug, Serialize)]
pub struct Found {
    pub path: PathBuf,
    pub server_name: String,
    pub created_ms: i64,
    pub encrypted: bool,
    /// Read from the manifest (an encrypted one needs the passphrase first).
    pub hearth_version: Option<String>,
    /// The manifest says a newer Hearth made it: this one cannot restore it.
    pub too_new: bool,
}

/// The backups at `path`: the backup itself when it is one, else the backups in it; newest first.
pub fn find(path: &Path) -> Vec<Found> {
    let one = |dir: &Path| -> Option<Found> {
        let name = dir.file_name()?.to_string_lossy().into_owned();
        let encrypted = dir.join(format!("{MANIFEST}{SEALED}")).is_file();
        if encrypted {
            // hearth-<server name>-<YYYYMMDD-HHMMSS>: the name is all an encrypted one shows.
            let rest = name.strip_prefix("hearth-")?;
            let (server_name, stamp) = rest.split_at(rest.len().checked_sub(16)?);
            let created_ms = parse_stamp(stamp.strip_prefix('-')?)?;
            return Some(Found {
                path: dir.to_path_buf(),
                server_name: server_name.to_owned(),
                created_ms,
                encrypted,
                hearth_version: None,
                too_new: false,
            });
        }
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).ok()?).ok()?;
        Some(Found {
            path: dir.to_path_buf(),
            too_new: manifest.schema_compat > storage::SCHEMA_COMPAT || manifest.format != FORMAT,
            server_name: manifest.server_name,
            created_ms: manifest.created_ms,
            encrypted,
            hearth_version: Some(manifest.hearth_version),
        })
    };
    if let Some(found) = one(path) {
        return vec![found];
    }
    let mut found: Vec<Found> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| one(&e.path()))
        .collect();
    found.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.path.cmp(&b.path)));
    found
}

/// A backup checked from end to end (manifest, schema, every file's size and hash), ready to be
/// written into a data folder.
pub struct Checked {
    from: PathBuf,
    media_dir: PathBuf,
    seal: Arc<Seal>,
    manifest: Manifest,
    /// The passphrase that opened it: kept for the restored server's scheduled backups.
    passphrase: Option<SecretString>,
}

impl Checked {
    pub fn server_name(&self) -> &str {
        &self.manifest.server_name
    }

    pub fn created_ms(&self) -> i64 {
        self.manifest.created_ms
    }
}

/// Checks the backup folder `from` without writing anything: it opens (with `passphrase` when
/// encrypted), a Hearth this old understands it, and every file is there as the manifest says.
/// An encrypted backup is decrypted for that, and again when it is written.
pub async fn check(from: &Path, passphrase: Option<&SecretString>) -> anyhow::Result<Checked> {
    let folder = from.parent().unwrap_or(Path::new(".")).to_path_buf();
    let encrypted = from.join(format!("{MANIFEST}{SEALED}")).exists();
    let seal = match (encrypted, passphrase) {
        (false, _) => Seal::Plain,
        (true, None) => bail!("this backup is encrypted: give the passphrase it was made with"),
        (true, Some(p)) => {
            let (folder, p) = (folder.clone(), p.clone());
            tokio::task::spawn_blocking(move || Seal::open(&folder, &p, false)).await??
        }
    };
    let seal = Arc::new(seal);
    let manifest: Manifest = {
        let path = from.join(seal.stored(MANIFEST));
        if !path.exists() {
            bail!("{} is not a Hearth backup (no {MANIFEST})", from.display());
        }
        let mut text = Vec::new();
        seal.read(&path, &mut text).with_context(|| format!("{} is damaged", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("{} is damaged", path.display()))?
    };
    if manifest.format != FORMAT {
        bail!("this backup's format ({}) is not one this Hearth reads ({FORMAT})", manifest.format);
    }
    if manifest.schema_compat > storage::SCHEMA_COMPAT {
        bail!(
            "this backup was made by a newer Hearth ({}, database schema {}; this one understands {}): install that version or a newer one to restore it",
            manifest.hearth_version,
            manifest.schema_compat,
            storage::SCHEMA_COMPAT
        );
    }
    if !manifest.files.iter().any(|f| f.path == DATABASE) {
        bail!("this backup has no database");
    }
    let media_dir = folder.join("media");
    let files: Vec<(String, PathBuf, u64, String)> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), safe_join(from, &seal.stored(&f.path)), f.size, f.sha256.clone()))
        .chain(manifest.media.iter().map(|m| {
            let path = MediaFiles::layout(&media_dir, &m.path).unwrap_or_default();
            (format!("media file {}", m.sha256), path, m.size, m.sha256.clone())
        }))
        .collect();
    let reader = seal.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for (what, path, size, sha256) in files {
            if !path.is_file() {
                bail!("{what} is missing from the backup ({})", path.display());
            }
            match reader.read(&path, std::io::sink()) {
                Ok((s, h)) if s == size && h == sha256 => {}
                Ok((s, _)) if s != size => {
                    bail!("{what} in the backup is {s} bytes, not {size}: the backup is damaged or incomplete")
                }
                Ok(_) => bail!("{what} in the backup was changed since the backup was made (its hash differs)"),
                Err(e) => bail!("{what} in the backup is damaged or was changed ({}): {e}", path.display()),
            }
        }
        Ok(())
    })
    .await??;
    Ok(Checked { from: from.to_path_buf(), media_dir, seal, manifest, passphrase: passphrase.cloned() })
}

/// Whether a restore takes the backup's admin key or keeps the install's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminKey {
    /// A new data folder (the command line): the backup's key opens the dashboard again.
    FromBackup,
    /// A fresh install restored from its wizard: the key of the dashboard open on it stays.
    KeepCurrent,
}

/// Restores the backup folder `from` into the data folder `config` names, which must have no
/// database yet. Everything is checked before anything is written; the database comes last.
pub async fn restore(config: &Config, from: &Path, passphrase: Option<&SecretString>) -> anyhow::Result<Restored> {
    refuse_existing(config)?;
    let checked = check(from, passphrase).await?;
    restore_checked(config, &checked, AdminKey::FromBackup).await
}

fn refuse_existing(config: &Config) -> anyhow::Result<()> {
    let data = config.data_dir();
    if data.join(DATABASE).exists() {
        bail!(
            "{} already has a database: a restore never overwrites one. Restore into a new data folder (data_dir), or move this one away first",
            data.display()
        );
    }
    Ok(())
}

/// Writes a checked backup into the data folder `config` names (which must have no database):
/// media, then secrets, then the database, written under another name and renamed.
pub async fn restore_checked(config: &Config, checked: &Checked, admin_key: AdminKey) -> anyhow::Result<Restored> {
    refuse_existing(config)?;
    let Checked { from, media_dir, seal, manifest, passphrase } = checked;
    let data = config.data_dir().to_path_buf();
    let db_path = data.join(DATABASE);
    std::fs::create_dir_all(&data)?;
    {
        let (seal, data, media_dir) = (seal.clone(), data.clone(), media_dir.clone());
        let media: Vec<(String, String)> = manifest.media.iter().map(|m| (m.path.clone(), m.sha256.clone())).collect();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let store = MediaFiles::open(&data)?;
            for (stored, sha256) in media {
                let target = store.path(&sha256)?;
                if !target.exists() {
                    std::fs::create_dir_all(target.parent().expect("a file in a folder"))?;
                    let tmp = target.with_extension("partial");
                    let file = std::fs::File::create(&tmp)?;
                    seal.read(&MediaFiles::layout(&media_dir, &stored)?, &file)?;
                    file.sync_all()?;
                    std::fs::rename(&tmp, &target)?;
                }
            }
            Ok(())
        })
        .await??;
    }
    let secrets = {
        let (choice, dir) = (config.secret_store, data.clone());
        tokio::task::spawn_blocking(move || Secrets::open(choice, &dir)).await??
    };
    for f in manifest.files.iter().filter(|f| f.path.starts_with("secrets/")) {
        let name = f.path.trim_start_matches("secrets/").to_owned();
        if !SECRETS.contains(&name.as_str())
            || (admin_key == AdminKey::KeepCurrent && name == super::admin_key::SECRET_NAME)
        {
            continue;
        }
        let mut bytes = Vec::new();
        seal.read(&safe_join(from, &seal.stored(&f.path)), &mut bytes)?;
        let s = secrets.clone();
        tokio::task::spawn_blocking(move || s.set(&name, &bytes)).await??;
    }
    // Scheduled backups of the restored server go on into encrypted folders without asking
    // for the passphrase again (it is never inside a backup).
    if let Some(p) = passphrase {
        let (s, p) = (secrets.clone(), p.expose_secret().as_bytes().to_vec());
        tokio::task::spawn_blocking(move || s.set(super::backup_schedule::PASSPHRASE_SECRET, &p)).await??;
    }
    let tmp = data.join(".restoring-hearth.db");
    {
        let (seal, source, tmp) = (seal.clone(), from.join(seal.stored(DATABASE)), tmp.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            seal.read(&source, &file)?;
            file.sync_all()?;
            Ok(())
        })
        .await??;
    }
    // Before the rename, so that a database in place always has its name.
    let name_from_backup = manifest.server_name != config.server_name.as_str();
    if name_from_backup {
        storage::backup::keep_server_name(&tmp, &manifest.server_name).await?;
    }
    std::fs::rename(&tmp, &db_path)?;
    sync_dir(&data)?;
    Ok(Restored { server_name: manifest.server_name.clone(), media: manifest.media.len(), name_from_backup })
}

/// `rel` under `base`, refusing anything that would leave it (a manifest is data from a file).
fn safe_join(base: &Path, rel: &str) -> PathBuf {
    let clean: PathBuf = Path::new(rel).components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
    base.join(clean)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_read_back() {
        for secs in [0, 951_782_400, 1_796_423_219, 4_102_444_799] {
            assert_eq!(super::parse_stamp(&super::utc_stamp(secs)), Some(secs * 1000));
        }
        assert_eq!(super::parse_stamp("2026120-1222659"), None);
        assert_eq!(super::parse_stamp("20261204_222659"), None);
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101-000000");
        assert_eq!(super::utc_stamp(1_796_423_219), "20261204-222659");
        assert_eq!(super::utc_stamp(951_782_400), "20000229-000000");
    }
}
