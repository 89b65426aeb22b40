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

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    Config,
    secrets::Secrets,
    storage::{self, media_files::MediaFiles},
};

/// The layout this binary writes and reads.
const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "hearth.db";

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

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Makes a backup of the server `config` describes in `out` (created when missing); answers the
/// backup's folder. `config_file` is copied into it when given.
pub async fn backup(config: &Config, config_file: Option<&Path>, out: &Path) -> anyhow::Result<PathBuf> {
    let data = config.data_dir().to_path_buf();
    let db_path = data.join(DATABASE);
    if !db_path.exists() {
        bail!("there is no database at {} to back up (check data_dir)", db_path.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let now = storage::now_ms();
    let stamp = utc_stamp(now / 1000);
    let name = format!("hearth-{}-{stamp}", config.server_name);
    let partial = out.join(format!(".partial-{name}"));
    let done = out.join(&name);
    if done.exists() {
        bail!("{} exists already: wait a second and try again", done.display());
    }
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(partial.join("secrets"))?;

    // The database first: what it refers to (media) is on disk before its rows are committed.
    let snapshot = partial.join(DATABASE);
    let schema_compat = storage::backup::snapshot(&db_path, &snapshot).await?;
    let mut files = Vec::new();
    let mut add = |rel: &str| -> anyhow::Result<()> {
        let (size, sha256) = hash_file(&partial.join(rel))?;
        files.push(Entry { path: rel.to_owned(), size, sha256 });
        Ok(())
    };
    add(DATABASE)?;

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
            write_private(&partial.join(&rel), &bytes)?;
            add(&rel)?;
        }
    }
    if let Some(file) = config_file {
        std::fs::copy(file, partial.join("homeserver.toml")).with_context(|| format!("copying {}", file.display()))?;
        add("homeserver.toml")?;
    }

    let media = copy_media(&data, &out.join("media")).await?;
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
    write_synced(&partial.join(MANIFEST), &text)?;
    sync_dir(&partial)?;
    std::fs::rename(&partial, &done)?;
    sync_dir(out)?;
    Ok(done)
}

/// Copies the media files not yet in `dest` (same layout, names are hashes); answers every
/// file's entry.
async fn copy_media(data: &Path, dest: &Path) -> anyhow::Result<Vec<Entry>> {
    let (data, dest) = (data.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Entry>> {
        let store = MediaFiles::open(&data)?;
        let mut entries = Vec::new();
        for (sha256, path) in store.all()? {
            let target = MediaFiles::layout(&dest, &sha256)?;
            let size = std::fs::metadata(&path)?.len();
            if std::fs::metadata(&target).map(|m| m.len()).ok() != Some(size) {
                std::fs::create_dir_all(target.parent().expect("a file in a folder"))?;
                let tmp = target.with_extension("partial");
                std::fs::copy(&path, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &target)?;
            }
            entries.push(Entry { path: sha256.clone(), size, sha256 });
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

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_synced(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
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
}

/// Restores the backup folder `from` into the data folder `config` names, which must have no
/// database yet. Everything is checked before anything is written; the database comes last.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<Restored> {
    let data = config.data_dir().to_path_buf();
    let db_path = data.join(DATABASE);
    if db_path.exists() {
        bail!(
            "{} already has a database: a restore never overwrites one. Restore into a new data folder (data_dir), or move this one away first",
            data.display()
        );
    }
    let manifest: Manifest = {
        let path = from.join(MANIFEST);
        let text = std::fs::read(&path)
            .with_context(|| format!("{} is not a Hearth backup (no {MANIFEST})", from.display()))?;
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
    // Every file as the manifest says, before anything is written.
    let media_dir = from.parent().unwrap_or(Path::new(".")).join("media");
    let checks = {
        let (from, media_dir) = (from.to_path_buf(), media_dir.clone());
        let files: Vec<(String, PathBuf, u64, String)> = manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), safe_join(&from, &f.path), f.size, f.sha256.clone()))
            .chain(manifest.media.iter().map(|m| {
                let path = MediaFiles::layout(&media_dir, &m.sha256).unwrap_or_default();
                (format!("media file {}", m.sha256), path, m.size, m.sha256.clone())
            }))
            .collect();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for (what, path, size, sha256) in files {
                match hash_file(&path) {
                    Ok((s, h)) if s == size && h == sha256 => {}
                    Ok((s, _)) if s != size => {
                        bail!("{what} in the backup is {s} bytes, not {size}: the backup is damaged or incomplete")
                    }
                    Ok(_) => bail!("{what} in the backup was changed since the backup was made (its hash differs)"),
                    Err(e) => bail!("{what} is missing from the backup ({}): {e}", path.display()),
                }
            }
            Ok(())
        })
    };
    checks.await??;

    std::fs::create_dir_all(&data)?;
    // Media, then secrets, then the database (written under another name, then renamed).
    {
        let (data, media_dir, hashes) =
            (data.clone(), media_dir.clone(), manifest.media.iter().map(|m| m.sha256.clone()).collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let store = MediaFiles::open(&data)?;
            for sha256 in hashes {
                let target = store.path(&sha256)?;
                if !target.exists() {
                    std::fs::create_dir_all(target.parent().expect("a file in a folder"))?;
                    let tmp = target.with_extension("partial");
                    std::fs::copy(MediaFiles::layout(&media_dir, &sha256)?, &tmp)?;
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
        if !SECRETS.contains(&name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(safe_join(from, &f.path))?;
        let s = secrets.clone();
        tokio::task::spawn_blocking(move || s.set(&name, &bytes)).await??;
    }
    let tmp = data.join(".restoring-hearth.db");
    std::fs::copy(from.join(DATABASE), &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &db_path)?;
    sync_dir(&data)?;
    Ok(Restored { server_name: manifest.server_name, media: manifest.media.len() })
}

/// `rel` under `base`, refusing anything that would leave it (a manifest is data from a file).
fn safe_join(base: &Path, rel: &str) -> PathBuf {
    let clean: PathBuf = Path::new(rel).components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
    base.join(clean)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101-000000");
        assert_eq!(super::utc_stamp(1_796_423_219), "20261204-222659");
        assert_eq!(super::utc_stamp(951_782_400), "20000229-000000");
    }
}
