//! Media bytes on disk, addressed by content: `data_dir/media/<first 2 hex>/<sha256 hex>`.
//! Identical content is stored once. A file is written under `media/tmp/`, hashed while it
//! streams in, synced, then renamed into place, so a file at its final name is always complete
//! (a crash leaves at most a temporary file, removed at the next start).
//!
//! File names come only from hashes this module computed, never from a client, so no request
//! can name a path.

use std::{
    io,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct MediaFiles {
    root: PathBuf,
}

/// A file that has been stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The content went past the limit; nothing was kept.
    #[error("content is larger than {0} bytes")]
    TooLarge(u64),
    /// The client's body broke off (closed connection, bad chunking); nothing was kept.
    #[error("the upload was interrupted: {0}")]
    Body(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl MediaFiles {
    /// Opens the store under `data_dir/media`, creating it, and removes temporary files left by
    /// uploads that a crash or a stop interrupted.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join("media");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self { root })
    }

    /// Where the content with this hash lives in a store rooted at `root` (a backup's media).
    pub fn layout(root: &Path, sha256: &str) -> io::Result<PathBuf> {
        Self { root: root.to_path_buf() }.path(sha256)
    }

    /// Every file in the store, with its hash (temporary files left out).
    pub fn all(&self) -> io::Result<Vec<(String, PathBuf)>> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            let name = dir.file_name();
            let Some(prefix) = name.to_str().filter(|n| n.len() == 2) else { continue };
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(dir.path())? {
                let file = file?;
                if let Some(hash) = file.file_name().to_str().filter(|h| h.starts_with(prefix))
                    && self.path(hash).is_ok()
                {
                    found.push((hash.to_owned(), file.path()));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Where the content with this hash lives. `sha256` must be one this store produced (64
    /// lowercase hex digits); anything else is refused so no string can become a path.
    pub fn path(&self, sha256: &str) -> io::Result<PathBuf> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a content hash"));
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }

    /// Streams `body` into the store, refusing more than `limit` bytes.
    pub async fn write_stream<S, E>(&self, body: S, limit: u64) -> Result<Stored, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let name: String = rand::Rng::sample_iter(rand::rngs::OsRng, &rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let tmp = self.root.join("tmp").join(name);
        let result = self.write_to(&tmp, body, limit).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Stores bytes made by the server itself (thumbnails, preview images).
    pub async fn write_bytes(&self, bytes: Bytes) -> Result<Stored, WriteError> {
        let len = bytes.len() as u64;
        self.write_stream(futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) }), len).await
    }

    async fn write_to<S, E>(&self, tmp: &Path, body: S, limit: u64) -> Result<Stored, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(tmp).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(WriteError::TooLarge(limit));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        // The upload is acknowledged only after its bytes are on disk.
        file.sync_all().await?;
        drop(file);
        let sha256 = hex::encode(hasher.finalize());
        let dest = self.path(&sha256)?;
        let dir = dest.parent().expect("content path has a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        if tokio::fs::try_exists(&dest).await? {
            // Same content already stored: keep the one copy.
            tokio::fs::remove_file(tmp).await?;
        } else {
            tokio::fs::rename(tmp, &dest).await?;
            // The rename itself must survive a crash too.
            let _ = tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all())).await;
        }
        Ok(Stored { sha256, size })
    }

    pub async fn open_file(&self, sha256: &str) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(sha256)?).await
    }

    pub async fn read(&self, sha256: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256)?).await
    }

    /// Deletes a content file nothing refers to any more (gone already is fine).
    pub async fn remove(&self, sha256: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(sha256)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// How many content files are stored.
    #[cfg(test)]
    pub fn count_files(&self) -> io::Result<usize> {
        let mut n = 0;
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            if dir.file_name() == "tmp" || !dir.file_type()?.is_dir() {
                continue;
            }
            n += std::fs::read_dir(dir.path())?.count();
        }
        Ok(n)
    }

    /// Temporary files present (uploads in progress or abandoned).
    #[cfg(test)]
    pub fn count_temporary(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(self.root.join("tmp"))?.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> {
        futures::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn identical_content_is_stored_once_and_named_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path()).unwrap();
        let a = files.write_stream(chunks(&[b"hello ", b"world"]), 100).await.unwrap();
        let b = files.write_stream(chunks(&[b"hello world"]), 100).await.unwrap();
        assert_eq!(a, b);
        // sha256("hello world")
        assert_eq!(a.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(files.count_files().unwrap(), 1);
        assert_eq!(files.read(&a.sha256).await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn content_past_the_limit_or_a_broken_body_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path()).unwrap();
        let e = files.write_stream(chunks(&[b"12345", b"67890", b"x"]), 10).await.unwrap_err();
        assert!(matches!(e, WriteError::TooLarge(10)), "{e}");
        let broken = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err("connection reset".to_owned())]);
        assert!(matches!(files.write_stream(broken, 100).await, Err(WriteError::Body(_))));
        assert_eq!(files.count_files().unwrap(), 0);
        assert_eq!(files.count_temporary().unwrap(), 0);
    }

    #[test]
    fn only_hashes_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let files = MediaFiles::open(dir.path()).unwrap();
        assert!(files.path("../../etc/passwd").is_err());
        assert!(files.path(&"A".repeat(64)).is_err());
        assert!(files.path(&"a".repeat(64)).is_ok());
    }
}
