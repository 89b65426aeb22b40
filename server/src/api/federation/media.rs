//! This server's media for other servers (spec: server-server API, "Content Repository"):
//! the authenticated download and thumbnail endpoints, answered as `multipart/mixed` (an empty
//! JSON metadata part, then the bytes). Only local media is served; other servers' media is
//! theirs to serve.

use std::time::Duration;

use axum::extract::State;
use ruma::{
    api::federation::authenticated_media::{
        Content, ContentMetadata, FileOrLocation, get_content, get_content_thumbnail,
    },
    http_headers::ContentDisposition,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{
        AppState,
        media::{Endpoint, check_media_id, thumbnail::Method},
    },
};

fn content(bytes: Vec<u8>, content_type: &str, filename: Option<&str>) -> Result<FileOrLocation> {
    let disposition: ContentDisposition =
        crate::api::client::media::content_disposition(content_type, filename).parse().map_err(Error::internal)?;
    Ok(FileOrLocation::File(Content::new(bytes, content_type.to_owned(), disposition)))
}

fn read_error(e: std::io::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("reading media"))
}

/// GET /_matrix/federation/v1/media/download/{mediaId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1mediadownloadmediaid>
pub async fn get_content(
    State(s): State<AppState>,
    req: Ruma<get_content::v1::Request>,
) -> Result<RumaResponse<get_content::v1::Response>> {
    let b = &req.body;
    check_media_id(&b.media_id)?;
    let ours = s.config.server_name.as_str();
    let item = s.media.get(ours, &b.media_id, Some(b.timeout_ms), Endpoint::Authenticated).await?;
    let bytes = s.media.files.read(&item.sha256).await.map_err(read_error)?;
    let content_type = item.content_type.as_deref().unwrap_or("application/octet-stream");
    let file = content(bytes, content_type, item.filename.as_deref())?;
    Ok(RumaResponse(get_content::v1::Response::new(ContentMetadata::new(), file)))
}

/// GET /_matrix/federation/v1/media/thumbnail/{mediaId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1mediathumbnailmediaid>
pub async fn get_content_thumbnail(
    State(s): State<AppState>,
    req: Ruma<get_content_thumbnail::v1::Request>,
) -> Result<RumaResponse<get_content_thumbnail::v1::Response>> {
    let b = &req.body;
    check_media_id(&b.media_id)?;
    let method = match b.method.as_ref().map(|m| m.as_str()) {
        None | Some("scale") => Method::Scale,
        Some("crop") => Method::Crop,
        Some(other) => {
            return Err(Error::invalid_param(format!("Unknown thumbnail method `{other}`: use crop or scale")));
        }
    };
    let dimension = |v: ruma::UInt| u32::try_from(u64::from(v)).unwrap_or(u32::MAX);
    let ours = s.config.server_name.as_str();
    let t = s
        .media
        .thumbnail(
            ours,
            &b.media_id,
            dimension(b.width),
            dimension(b.height),
            method,
            b.animated.unwrap_or(false),
            Some(b.timeout_ms.min(Duration::from_secs(60))),
            Endpoint::Authenticated,
        )
        .await?;
    let bytes = s.media.files.read(&t.sha256).await.map_err(read_error)?;
    let ext = t.content_type.rsplit('/').next().unwrap_or("png").to_owned();
    let file = content(bytes, &t.content_type, Some(&format!("thumbnail.{ext}")))?;
    Ok(RumaResponse(get_content_thumbnail::v1::Response::new(ContentMetadata::new(), file)))
}
