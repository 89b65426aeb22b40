//! The content repository (spec: Client-Server API, "Content repository"): uploads (direct and
//! asynchronous), downloads, thumbnails, URL previews, quotas.
//!
//! Bytes are files addressed by their hash (`storage::media_files`), metadata rows in SQLite
//! (`storage::media`). A media item is keyed by (origin, media ID), so media fetched from other
//! servers over federation (a later issue) is one more row with another origin.

pub mod preview;
mod remote;
pub mod thumbnail;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::Stream;
use http::StatusCode;
use ruma::api::error::{ErrorKind, ResourceLimitExceededErrorData};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::{
    config::Config,
    error::{Error, Result},
    service::outbound::{IpPolicy, Outbound},
    service::tokens::random_alphanumeric,
    storage::{
        Db,
        media::{self, MediaRow, NewMedia},
        media_files::{MediaFiles, Stored, WriteError},
        now_ms,
    },
};
use thumbnail::{Method, Thumbnail, ThumbnailError};

/// Longest a download waits for an asynchronous upload's content (the spec's default is 20 s).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A preview is reused for an hour; a failed fetch is retried after ten minutes.
const PREVIEW_TTL_MS: i64 = 3600 * 1000;
const PREVIEW_ERROR_TTL_MS: i64 = 600 * 1000;

/// What a client says about an upload besides its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadMeta<'a> {
    pub content_type: Option<&'a str>,
    pub filename: Option<&'a str>,
    /// The Content-Length, when given: an upload over the limit is refused before reading it.
    pub declared_len: Option<u64>,
}

pub use crate::storage::media::{UploaderFilter, UploaderOrder, UploaderStats, UserMedia, UserMediaOrder};

pub struct Media {
    db: Db,
    config: Arc<Config>,
    pub files: MediaFiles,
    /// Woken whenever an asynchronous upload receives its content.
    uploaded: Notify,
    /// None when previews are off.
    preview_client: Option<Outbound>,
    /// Thumbnails decoded at once: a 32-megapixel image takes 128 MiB while it is scaled, and
    /// a burst of requests must not multiply that on a small machine.
    thumbnailing: tokio::sync::Semaphore,
    /// Other servers' media is fetched through federation...
    federation: Arc<crate::service::federation::FederationClient>,
    /// ...and a redirect in its answer followed with this client (the outbound policy).
    redirects: Outbound,
    /// Remote items being fetched, so concurrent requests fetch once.
    fetching: parking_lot::Mutex<std::collections::HashMap<(String, String), FetchLock>>,
}

/// Held while one remote item is fetched.
type FetchLock = Arc<tokio::sync::Mutex<()>>;

/// What a download serves: the stored item, and its bytes' file.
#[derive(Debug, Clone)]
pub struct Content {
    pub sha256: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
}

/// A thumbnail to serve.
pub struct ThumbnailContent {
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
}

/// Where a download request came from: the legacy endpoints serve only media from before the
/// authenticated-media cut-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authenticated,
    Legacy,
}

impl Media {
    pub fn new(
        db: Db,
        config: Arc<Config>,
        outbound: &IpPolicy,
        federation: Arc<crate::service::federation::FederationClient>,
    ) -> anyhow::Result<Self> {
        let files = MediaFiles::open(config.data_dir())?;
        let allow = config.url_preview_ranges().map_err(anyhow::Error::msg)?;
        let preview_client = config.url_preview_enabled.then(|| preview::client(outbound.allowing(&allow)));
        let redirects = Outbound::new(
            outbound.clone(),
            "remote media",
            Duration::from_secs(60),
            crate::service::outbound::Redirects::Follow(5),
        );
        Ok(Self {
            federation,
            redirects,
            fetching: Default::default(),
            db,
            config,
            files,
            uploaded: Notify::new(),
            preview_client,
            thumbnailing: tokio::sync::Semaphore::new(2),
        })
    }

    pub fn max_upload_size(&self) -> u64 {
        self.config.max_upload_size.0
    }

    fn origin(&self) -> &str {
        self.config.server_name.as_str()
    }

    /// `POST /media/v3/upload`: stores the body and returns the new media ID.
    pub async fn upload<S, E>(&self, user: &str, meta: UploadMeta<'_>, body: S) -> Result<String>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let stored = self.store_upload(user, meta.declared_len, body).await?;
        let media_id = random_alphanumeric(24);
        let now = now_ms();
        media::insert(
            &self.db.write,
            &NewMedia {
                origin: self.origin(),
                media_id: &media_id,
                uploader: Some(user),
                sha256: &stored.sha256,
                size: stored.size as i64,
                content_type: meta.content_type,
                filename: meta.filename,
                now,
                authenticated: self.config.enable_authenticated_media,
            },
        )
        .await?;
        Ok(media_id)
    }

    /// The limit checks every upload goes through, then the bytes into the store.
    async fn store_upload<S, E>(&self, user: &str, declared_len: Option<u64>, body: S) -> Result<Stored>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let limit = self.max_upload_size();
        if declared_len.is_some_and(|l| l > limit) {
            return Err(too_large(limit));
        }
        let used = media::bytes_used(&self.db.read, user).await? as u64;
        if let Some(l) = declared_len {
            self.check_quota(used, l)?;
        }
        let stored = self.files.write_stream(body, limit).await.map_err(|e| match e {
            WriteError::TooLarge(l) => too_large(l),
            WriteError::Body(m) => {
                Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::Unknown, format!("The upload was interrupted: {m}"))
            }
            WriteError::Io(e) => Error::Internal(anyhow::Error::new(e).context("writing media")),
        })?;
        // The declared length may have been absent (chunked) or wrong.
        self.check_quota(used, stored.size)?;
        Ok(stored)
    }

    fn check_quota(&self, used: u64, adding: u64) -> Result<()> {
        match self.config.media_storage_quota_per_user {
            Some(q) if used.saturating_add(adding) > q.0 => {
                let contact = self.config.admin_contact.clone().unwrap_or_else(|| self.config.public_baseurl());
                Err(Error::matrix(
                    StatusCode::FORBIDDEN,
                    ErrorKind::ResourceLimitExceeded(ResourceLimitExceededErrorData::new(contact)),
                    format!(
                        "This upload would take your media past your storage quota of {} bytes ({used} used); delete old media or ask the server admin",
                        q.0
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// `POST /media/v1/create`: reserves a media ID whose content comes later.
    pub async fn create_pending(&self, user: &str) -> Result<(String, i64)> {
        let now = now_ms();
        let pending = media::pending_count(&self.db.read, user, now).await?;
        if pending >= i64::from(self.config.max_pending_media_uploads) {
            return Err(Error::limit_exceeded(Duration::from_secs(60)));
        }
        let media_id = random_alphanumeric(24);
        let expires = now + self.config.unused_expiration_time.0.as_millis() as i64;
        media::insert_pending(
            &self.db.write,
            self.origin(),
            &media_id,
            user,
            now,
            expires,
            self.config.enable_authenticated_media,
        )
        .await?;
        Ok((media_id, expires))
    }

    /// `PUT /media/v3/upload/{serverName}/{mediaId}`: the content of a reserved ID.
    pub async fn upload_pending<S, E>(
        &self,
        user: &str,
        origin: &str,
        media_id: &str,
        meta: UploadMeta<'_>,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        check_media_id(media_id)?;
        let now = now_ms();
        let row = self.pending_row(origin, media_id, now).await?;
        if row.uploader.as_deref() != Some(user) {
            return Err(Error::forbidden("This media ID was reserved by another user"));
        }
        let stored = self.store_upload(user, meta.declared_len, body).await?;
        let content = media::Content {
            sha256: &stored.sha256,
            size: stored.size as i64,
            content_type: meta.content_type,
            filename: meta.filename,
        };
        let done = media::complete_pending(&self.db.write, origin, media_id, &content, now_ms()).await?;
        if !done {
            // A concurrent upload won, or the ID expired meanwhile.
            self.pending_row(origin, media_id, now_ms()).await?;
            return Err(cannot_overwrite());
        }
        self.uploaded.notify_waiters();
        Ok(())
    }

    /// The reserved, still empty row for an upload, or the error explaining why there is none.
    async fn pending_row(&self, origin: &str, media_id: &str, now: i64) -> Result<MediaRow> {
        if origin != self.origin() {
            return Err(Error::forbidden("Media can only be uploaded to this server"));
        }
        let row = media::get(&self.db.read, origin, media_id)
            .await?
            .ok_or_else(|| Error::not_found("No such media ID was reserved"))?;
        if row.sha256.is_some() {
            return Err(cannot_overwrite());
        }
        if row.expires_ts.is_some_and(|e| e <= now) {
            return Err(Error::not_found("This media ID expired before its content was uploaded"));
        }
        Ok(row)
    }

    /// The item for a download, waiting up to `timeout` for an asynchronous upload's content.
    pub async fn get(
        &self,
        origin: &str,
        media_id: &str,
        timeout: Option<Duration>,
        endpoint: Endpoint,
    ) -> Result<Content> {
        check_media_id(media_id)?;
        if origin != self.origin() {
            // Fetched on the authenticated endpoints; the legacy ones serve it only while
            // media is not authenticated here (Synapse's cut-over).
            let may_fetch = endpoint == Endpoint::Authenticated || !self.config.enable_authenticated_media;
            return self.remote(origin, media_id, timeout, may_fetch).await;
        }
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or(Duration::from_secs(20)).min(MAX_WAIT);
        loop {
            // Register for the wake-up before reading, so an upload in between is not missed.
            let notified = self.uploaded.notified();
            let row = media::get(&self.db.read, origin, media_id)
                .await?
                .ok_or_else(|| Error::not_found("Media not found"))?;
            if row.quarantined_by.is_some() {
                return Err(Error::not_found("Not found"));
            }
            if endpoint == Endpoint::Legacy && row.authenticated {
                return Err(Error::not_found(
                    "Media not found: this server serves new media only on the authenticated endpoints (/_matrix/client/v1/media)",
                ));
            }
            if let Some(sha256) = row.sha256 {
                // For `media_retention.local_media_lifetime`: served now and then counts.
                let now = now_ms();
                if self.config.media_retention.local_media_lifetime.is_some()
                    && row.last_access_ts.is_none_or(|at| at < now - remote::TOUCH_EVERY_MS)
                {
                    media::touch(&self.db.write, origin, media_id, now).await?;
                }
                return Ok(Content {
                    sha256,
                    size: row.size as u64,
                    content_type: row.content_type,
                    filename: row.filename,
                });
            }
            if row.expires_ts.is_some_and(|e| e <= now_ms()) {
                return Err(Error::not_found("Media not found"));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::matrix(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorKind::NotYetUploaded,
                    "The content of this media has not been uploaded yet",
                ));
            }
        }
    }

    /// A thumbnail of the item, made and cached on first request.
    #[allow(clippy::too_many_arguments)]
    pub async fn thumbnail(
        &self,
        origin: &str,
        media_id: &str,
        width: u32,
        height: u32,
        method: Method,
        animated: bool,
        timeout: Option<Duration>,
        endpoint: Endpoint,
    ) -> Result<ThumbnailContent> {
        if width == 0 || height == 0 || width > thumbnail::MAX_DIMENSION || height > thumbnail::MAX_DIMENSION {
            return Err(Error::invalid_param(format!(
                "width and height must be between 1 and {}",
                thumbnail::MAX_DIMENSION
            )));
        }
        let content = self.get(origin, media_id, timeout, endpoint).await?;
        let (tw, th, tm) = thumbnail::choose(width, height, method);
        if let Some(t) = media::thumbnail(&self.db.read, &content.sha256, tw, th, tm.as_str(), animated).await? {
            return Ok(ThumbnailContent { sha256: t.thumb_sha256, size: t.size as u64, content_type: t.content_type });
        }
        let read_error = |e: std::io::Error| Error::Internal(anyhow::Error::new(e).context("reading media"));
        // A video or a document is recognised from its first bytes, without reading it whole.
        {
            use tokio::io::AsyncReadExt;
            let mut head = Vec::with_capacity(64);
            self.files
                .open_file(&content.sha256)
                .await
                .map_err(read_error)?
                .take(64)
                .read_to_end(&mut head)
                .await
                .map_err(read_error)?;
            if image::guess_format(&head).is_err() {
                return Err(cannot_thumbnail("not an image format this server reads"));
            }
        }
        let _permit = self.thumbnailing.acquire().await.map_err(Error::internal)?;
        // Another request may have made it while this one waited.
        if let Some(t) = media::thumbnail(&self.db.read, &content.sha256, tw, th, tm.as_str(), animated).await? {
            return Ok(ThumbnailContent { sha256: t.thumb_sha256, size: t.size as u64, content_type: t.content_type });
        }
        let bytes = self.files.read(&content.sha256).await.map_err(read_error)?;
        let max_pixels = self.config.max_image_pixels.0;
        let made = tokio::task::spawn_blocking(move || thumbnail::make(&bytes, tw, th, tm, animated, max_pixels))
            .await
            .map_err(|e| Error::internal(format!("thumbnailing panicked: {e}")))?;
        let (stored, content_type) = match made {
            Ok(Thumbnail::Original { content_type }) => {
                (Stored { sha256: content.sha256.clone(), size: content.size }, content_type.to_owned())
            }
            Ok(Thumbnail::Made { bytes, content_type, .. }) => {
                let stored = self
                    .files
                    .write_bytes(Bytes::from(bytes))
                    .await
                    .map_err(|e| Error::internal(format!("storing a thumbnail: {e}")))?;
                (stored, content_type.to_owned())
            }
            Err(ThumbnailError::TooLarge(w, h)) => {
                return Err(Error::too_large(format!("The image is {w} x {h} pixels, too large to thumbnail")));
            }
            Err(ThumbnailError::Undecodable(why)) => return Err(cannot_thumbnail(&why)),
        };
        media::insert_thumbnail(
            &self.db.write,
            &content.sha256,
            tw,
            th,
            tm.as_str(),
            animated,
            &stored.sha256,
            &content_type,
            stored.size as i64,
        )
        .await?;
        Ok(ThumbnailContent { sha256: stored.sha256, size: stored.size, content_type })
    }

    /// `GET /media/v3/preview_url`: OpenGraph data for a URL, from the cache when fresh.
    pub async fn preview_url(&self, url: &str) -> Result<Map<String, Value>> {
        let Some(client) = &self.preview_client else {
            return Err(Error::unrecognized(
                StatusCode::NOT_FOUND,
                "URL previews are turned off on this server (url_preview_enabled)",
            ));
        };
        let parsed = url::Url::parse(url).map_err(|e| Error::invalid_param(format!("`url` is not a URL: {e}")))?;
        let now = now_ms();
        if let Some((og, error, ts)) = media::url_preview(&self.db.read, url).await? {
            if let Some(og) = og.filter(|_| now - ts < PREVIEW_TTL_MS) {
                return serde_json::from_str(&og).map_err(|e| Error::internal(format!("cached preview: {e}")));
            }
            if let Some(error) = error.filter(|_| now - ts < PREVIEW_ERROR_TTL_MS) {
                return Err(Error::matrix(StatusCode::BAD_GATEWAY, ErrorKind::Unknown, error));
            }
        }
        match self.fetch_preview(client, parsed).await {
            Ok(og) => {
                let text = Value::Object(og.clone()).to_string();
                media::put_url_preview(&self.db.write, url, Some(&text), None, now).await?;
                Ok(og)
            }
            Err(preview::PreviewError::Blocked(why)) => {
                tracing::info!(%url, %why, "URL preview refused");
                Err(Error::forbidden("This address may not be previewed (it is internal to the server's network)"))
            }
            Err(preview::PreviewError::Invalid(why)) => Err(Error::invalid_param(why)),
            Err(e) => {
                let message = format!("Could not preview this URL: {e}");
                media::put_url_preview(&self.db.write, url, None, Some(&message), now).await?;
                Err(Error::matrix(StatusCode::BAD_GATEWAY, ErrorKind::Unknown, message))
            }
        }
    }

    async fn fetch_preview(
        &self,
        client: &Outbound,
        url: url::Url,
    ) -> Result<Map<String, Value>, preview::PreviewError> {
        let limit = self.config.max_spider_size.0;
        let page = preview::fetch(client, url, limit).await?;
        let kind = preview::essence(page.content_type.as_deref());
        if kind.starts_with("image/") {
            let mut og = Map::new();
            self.add_preview_image(&mut og, page.body, &kind).await;
            return Ok(og);
        }
        if kind != "text/html" && kind != "application/xhtml+xml" {
            return Ok(Map::new());
        }
        let html = String::from_utf8_lossy(&page.body).into_owned();
        let base = page.url.clone();
        let mut og = tokio::task::spawn_blocking(move || preview::parse_html(&html, &base))
            .await
            .map_err(|e| preview::PreviewError::Fetch(format!("parsing the page failed: {e}")))?;
        if let Some(image_url) = og.remove("og:image").and_then(|v| v.as_str().and_then(|s| url::Url::parse(s).ok())) {
            // The image goes through the same address checks; a failure only drops the image.
            if let Ok(img) = preview::fetch(client, image_url, limit).await {
                let kind = preview::essence(img.content_type.as_deref());
                if kind.starts_with("image/") {
                    self.add_preview_image(&mut og, img.body, &kind).await;
                }
            }
        }
        Ok(og)
    }

    /// Stores a preview's image as media of this server and points `og:image` at it.
    async fn add_preview_image(&self, og: &mut Map<String, Value>, body: Vec<u8>, kind: &str) {
        let dims = thumbnail::dimensions(&body).ok();
        let size = body.len();
        let Ok(stored) = self.files.write_bytes(Bytes::from(body)).await else { return };
        let media_id = random_alphanumeric(24);
        let row = NewMedia {
            origin: self.origin(),
            media_id: &media_id,
            uploader: None,
            sha256: &stored.sha256,
            size: stored.size as i64,
            content_type: Some(kind),
            filename: None,
            now: now_ms(),
            authenticated: self.config.enable_authenticated_media,
        };
        if media::insert(&self.db.write, &row).await.is_err() {
            return;
        }
        og.insert("og:image".to_owned(), Value::String(format!("mxc://{}/{media_id}", self.origin())));
        og.insert("og:image:type".to_owned(), Value::String(kind.to_owned()));
        og.insert("matrix:image:size".to_owned(), Value::from(size));
        if let Some((w, h)) = dims {
            og.insert("og:image:width".to_owned(), Value::from(w));
            og.insert("og:image:height".to_owned(), Value::from(h));
        }
    }

    /// Housekeeping: expired reserved IDs and stale previews.
    pub async fn sweep(&self) -> Result<()> {
        let now = now_ms();
        media::delete_expired_pending(&self.db.write, now).await?;
        media::delete_url_previews_before(&self.db.write, now - 24 * PREVIEW_TTL_MS).await?;
        if let Some(lifetime) = self.config.media_retention.remote_media_lifetime {
            self.drop_before(Kept::Remote, now - lifetime.0.as_millis() as i64).await?;
        }
        if let Some(lifetime) = self.config.media_retention.local_media_lifetime {
            self.drop_before(Kept::Local, now - lifetime.0.as_millis() as i64).await?;
        }
        Ok(())
    }

    /// Quarantines (`by` an admin) or releases (None) media named by (origin, media ID), with
    /// every item of the same content; how many items changed.
    pub async fn quarantine(&self, items: &[(String, String)], by: Option<&str>) -> Result<u64> {
        let mut conn = self.db.acquire_write().await?;
        let n = media::quarantine(&mut conn, items, by).await?;
        tracing::info!(items = items.len(), changed = n, quarantined = by.is_some(), "media quarantine changed");
        Ok(n)
    }

    /// Quarantines the media of `mxc://` URLs (others are skipped); how many items changed.
    pub async fn quarantine_urls(&self, urls: &[String], by: &str) -> Result<u64> {
        let items: Vec<(String, String)> = urls
            .iter()
            .filter_map(|u| {
                let (server, id) = u.strip_prefix("mxc://")?.split_once('/')?;
                (!server.is_empty() && !id.is_empty() && !id.contains('/')).then(|| (server.to_owned(), id.to_owned()))
            })
            .collect();
        self.quarantine(&items, Some(by)).await
    }

    /// Quarantines every item `user` uploaded here; how many items changed.
    pub async fn quarantine_uploads_of(&self, user: &str, by: &str) -> Result<u64> {
        let ids = media::ids_of_uploader(&self.db.read, self.origin(), user).await?;
        let items: Vec<(String, String)> = ids.into_iter().map(|id| (self.origin().to_owned(), id)).collect();
        self.quarantine(&items, Some(by)).await
    }

    /// Protects an item uploaded here from quarantine, or ends that.
    pub async fn set_protected(&self, media_id: &str, protected: bool) -> Result<()> {
        Ok(media::set_safe_from_quarantine(&self.db.write, self.origin(), media_id, protected).await?)
    }

    /// Deletes the files of deleted media that nothing uses any more.
    async fn remove_files(&self, orphans: &[String]) -> Result<()> {
        for sha in orphans {
            // Checked again: an upload of the same content may have come meanwhile.
            if !media::file_in_use(&self.db.write, sha).await?
                && let Err(e) = self.files.remove(sha).await
            {
                tracing::warn!(sha256 = %sha, error = %e, "deleting an unused media file");
            }
        }
        Ok(())
    }

    /// Deletes remote or local media last served before `before`, and the files no longer used.
    async fn drop_before(&self, kind: Kept, before: i64) -> Result<usize> {
        let mut tx = self.db.begin_write().await?;
        let orphans = match kind {
            Kept::Remote => media::delete_remote_before(&mut tx, before).await?,
            Kept::Local => media::delete_local_before(&mut tx, self.origin(), before).await?,
        };
        tx.commit().await?;
        self.remove_files(&orphans).await?;
        if !orphans.is_empty() {
            tracing::info!(files = orphans.len(), kind = ?kind, "media past its media_retention lifetime deleted");
        }
        Ok(orphans.len())
    }
}

/// Which media a lifetime applies to.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Remote,
    Local,
}

impl Media {
    /// Bytes of media content stored (each distinct file once), for the dashboard.
    pub async fn stored_bytes(&self) -> Result<u64> {
        Ok(media::stored_bytes(&self.db.read).await? as u64)
    }

    /// One page of the media `user` uploaded here, and how many there are.
    pub async fn user_media(
        &self,
        user: &ruma::UserId,
        order: UserMediaOrder,
        backwards: bool,
        from: i64,
        limit: i64,
    ) -> Result<(Vec<UserMedia>, i64)> {
        Ok(media::user_media(&self.db.read, self.origin(), user.as_str(), order, backwards, from, limit).await?)
    }

    /// Deletes media uploaded here, by ID, with their files once nothing uses them; answers the
    /// IDs that were there and are gone.
    pub async fn delete_local_media(&self, media_ids: &[String]) -> Result<Vec<String>> {
        let mut tx = self.db.begin_write().await?;
        let (deleted, orphans) = media::delete_local(&mut tx, self.origin(), media_ids).await?;
        tx.commit().await?;
        self.remove_files(&orphans).await?;
        if !deleted.is_empty() {
            tracing::info!(media = deleted.len(), "media deleted by an admin");
        }
        Ok(deleted)
    }

    /// Media uploaded here last used before `before` (ms), bigger than `size_gt` bytes;
    /// `keep_profiles` spares the pictures people use as their avatar.
    pub async fn local_media_before(&self, before: i64, size_gt: i64, keep_profiles: bool) -> Result<Vec<String>> {
        Ok(media::local_before(&self.db.read, self.origin(), before, size_gt, keep_profiles).await?)
    }

    /// Drops the copies of other servers' media last served before `before` (ms); answers how
    /// many (Synapse's `purge_media_cache`).
    pub async fn purge_remote_before(&self, before: i64) -> Result<usize> {
        self.drop_before(Kept::Remote, before).await
    }

    /// Media uploaded here, per uploader (Synapse's `statistics/users/media`); the filter's
    /// origin is set here.
    pub async fn uploader_stats(&self, mut filter: UploaderFilter) -> Result<(Vec<UploaderStats>, i64)> {
        filter.origin = self.origin().to_owned();
        Ok(media::uploader_stats(&self.db.read, &filter).await?)
    }
}

/// The spec's character set for media IDs (Content repository, "Security considerations"):
/// anything else can never have been issued, and might be a path traversal attempt.
pub fn check_media_id(media_id: &str) -> Result<()> {
    if media_id.is_empty()
        || media_id.len() > 255
        || !media_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid_param("Invalid media ID: only letters, digits, '_' and '-' are allowed"));
    }
    Ok(())
}

fn too_large(limit: u64) -> Error {
    Error::too_large(format!("Uploads are limited to {limit} bytes on this server"))
}

fn cannot_thumbnail(why: &str) -> Error {
    Error::matrix(
        StatusCode::BAD_REQUEST,
        ErrorKind::Unknown,
        format!("Cannot generate a thumbnail for this content ({why}); download the original instead"),
    )
}

fn cannot_overwrite() -> Error {
    Error::matrix(StatusCode::CONFLICT, ErrorKind::CannotOverwriteMedia, "This media already has its content")
}
