//! Media of other servers (spec: server-server API, "Content Repository"): fetched over
//! federation the first time a local user asks for it (`/_matrix/federation/v1/media/download`,
//! signed, a `multipart/mixed` answer with the bytes or a redirect), kept in the content store
//! like local media, and served from there afterwards. A server without the authenticated
//! endpoints is asked on the legacy download path. Every request goes through the federation
//! client, so the outbound IP policy and `federation_domain_whitelist` apply; a redirect is
//! followed under the same policy. Nothing larger than `max_upload_size` is taken.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::StatusCode;
use ruma::{
    ServerName,
    api::{error::ErrorKind, federation::authenticated_media::FileOrLocation},
};

use super::{Content, Media, preview};
use crate::{
    error::{Error, Result},
    service::federation::client::FederationError,
    storage::{
        media::{self, NewMedia},
        media_files::WriteError,
        now_ms,
    },
};

/// How often a cached item's last access is written (retention counts in days, not seconds).
pub(super) const TOUCH_EVERY_MS: i64 = 3600 * 1000;

/// What was fetched: bytes, content type, file name.
type Fetched = (Vec<u8>, Option<String>, Option<String>);

impl Media {
    /// Remote media from the store, fetched first if it is not there. `may_fetch`: whether
    /// this request may fetch it (the legacy endpoints may not, as in Synapse once media is
    /// authenticated).
    pub(super) async fn remote(
        &self,
        origin: &str,
        media_id: &str,
        timeout: Option<Duration>,
        may_fetch: bool,
    ) -> Result<Content> {
        if let Some(content) = self.cached(origin, media_id).await? {
            return Ok(content);
        }
        if !may_fetch {
            return Err(Error::not_found(
                "Media not found: media of other servers is served only on the authenticated endpoints (/_matrix/client/v1/media)",
            ));
        }
        let server = <&ServerName>::try_from(origin)
            .map_err(|_| Error::invalid_param(format!("{origin} is not a server name")))?;
        // One fetch per item: requests for it meanwhile wait and then find it stored.
        let lock = self.fetching.lock().entry((origin.to_owned(), media_id.to_owned())).or_default().clone();
        let guard = lock.lock().await;
        let found = match self.cached(origin, media_id).await? {
            Some(content) => Ok(content),
            None => self.fetch_and_store(server, media_id, timeout).await,
        };
        drop(guard);
        let mut fetching = self.fetching.lock();
        if Arc::strong_count(&lock) <= 2 {
            fetching.remove(&(origin.to_owned(), media_id.to_owned()));
        }
        found
    }

    /// The stored copy, its last access refreshed now and then.
    async fn cached(&self, origin: &str, media_id: &str) -> Result<Option<Content>> {
        let Some(row) = media::get(&self.db.read, origin, media_id).await? else { return Ok(None) };
        if row.quarantined_by.is_some() {
            return Err(Error::not_found("Not found"));
        }
        let Some(sha256) = row.sha256 else { return Ok(None) };
        let now = now_ms();
        if row.last_access_ts.is_none_or(|at| at < now - TOUCH_EVERY_MS) {
            media::touch(&self.db.write, origin, media_id, now).await?;
        }
        Ok(Some(Content { sha256, size: row.size as u64, content_type: row.content_type, filename: row.filename }))
    }

    async fn fetch_and_store(&self, server: &ServerName, media_id: &str, timeout: Option<Duration>) -> Result<Content> {
        let started = std::time::Instant::now();
        let (bytes, content_type, filename) = self.fetch(server, media_id, timeout).await?;
        let stored = self.files.write_bytes(Bytes::from(bytes)).await.map_err(|e| match e {
            WriteError::TooLarge(l) => remote_too_large(l),
            e => Error::internal(format!("storing remote media: {e}")),
        })?;
        media::insert_remote(
            &self.db.write,
            &NewMedia {
                origin: server.as_str(),
                media_id,
                uploader: None,
                sha256: &stored.sha256,
                size: stored.size as i64,
                content_type: content_type.as_deref(),
                filename: filename.as_deref(),
                now: now_ms(),
                authenticated: true,
            },
        )
        .await?;
        tracing::info!(%server, media_id, bytes = stored.size, ms = started.elapsed().as_millis() as u64, "remote media fetched");
        Ok(Content { sha256: stored.sha256, size: stored.size, content_type, filename })
    }

    /// Asks `server` for the item: the authenticated federation endpoint, else the legacy one.
    async fn fetch(&self, server: &ServerName, media_id: &str, timeout: Option<Duration>) -> Result<Fetched> {
        let limit = self.max_upload_size() as usize;
        let mut request =
            ruma::api::federation::authenticated_media::get_content::v1::Request::new(media_id.to_owned());
        request.timeout_ms = timeout.unwrap_or(Duration::from_secs(20)).min(Duration::from_secs(60));
        // The multipart framing and the JSON part come on top of the file.
        match self.federation.send_limited(server, request, limit + 64 * 1024).await {
            Ok(resp) => match resp.content {
                FileOrLocation::File(c) => {
                    if c.file.len() > limit {
                        return Err(remote_too_large(limit as u64));
                    }
                    Ok((c.file, c.content_type, c.content_disposition.and_then(|d| d.filename)))
                }
                FileOrLocation::Location(url) => self.follow(&url, limit as u64).await,
                _ => Err(not_fetched("the remote server's answer is of a kind this server does not know")),
            },
            Err(e) if endpoint_unknown(&e) => self.fetch_legacy(server, media_id, limit).await,
            Err(e) => Err(fetch_error(server, e)),
        }
    }

    /// The legacy unauthenticated download, for servers that predate authenticated media.
    async fn fetch_legacy(&self, server: &ServerName, media_id: &str, limit: usize) -> Result<Fetched> {
        // Both are checked already (a server name, a media ID of URL-safe characters).
        let path = format!("/_matrix/media/v3/download/{server}/{media_id}?allow_remote=false");
        let resp = self.federation.get_raw(server, &path, limit).await.map_err(|e| fetch_error(server, e))?;
        let header =
            |name: http::header::HeaderName| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header(http::header::CONTENT_TYPE);
        let filename = header(http::header::CONTENT_DISPOSITION)
            .and_then(|d| d.parse::<ruma::http_headers::ContentDisposition>().ok())
            .and_then(|d| d.filename);
        Ok((resp.into_body(), content_type, filename))
    }

    /// A redirect in the federation answer, followed under the outbound policy.
    async fn follow(&self, url: &str, limit: u64) -> Result<Fetched> {
        let url = url::Url::parse(url).map_err(|_| not_fetched("the remote server redirected to an invalid URL"))?;
        let fetched = preview::fetch(&self.redirects, url, limit).await.map_err(|e| match e {
            preview::PreviewError::TooLarge(l) => remote_too_large(l),
            e => not_fetched(&format!("following the remote server's redirect: {e}")),
        })?;
        Ok((fetched.body, fetched.content_type, None))
    }
}

/// Whether a refusal means "no such endpoint" (an older server): Synapse's test for falling
/// back to the legacy path.
fn endpoint_unknown(e: &FederationError) -> bool {
    match e {
        FederationError::Refused { status, .. } => {
            matches!(*status, 400 | 404 | 405 | 501) && e.errcode().is_none_or(|c| c == "M_UNRECOGNIZED")
        }
        _ => false,
    }
}

fn fetch_error(server: &ServerName, e: FederationError) -> Error {
    match &e {
        FederationError::TooLarge(l) => remote_too_large(*l as u64),
        FederationError::Refused { status: 404, .. } => Error::not_found("Media not found"),
        _ => {
            tracing::info!(%server, error = %e, "remote media could not be fetched");
            // The other server's failure, not ours: no 5xx (as for remote profiles).
            not_fetched(&format!("{server} did not provide it"))
        }
    }
}

fn not_fetched(why: &str) -> Error {
    Error::not_found(format!("Remote media could not be fetched: {why}"))
}

/// The spec's answer for remote content over the limit: 502 M_TOO_LARGE.
fn remote_too_large(limit: u64) -> Error {
    Error::matrix(
        StatusCode::BAD_GATEWAY,
        ErrorKind::TooLarge,
        format!("The remote content is larger than this server's limit of {limit} bytes"),
    )
}
