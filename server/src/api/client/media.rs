//! Content repository endpoints (spec: Client-Server API, "Content repository"): the
//! authenticated `/_matrix/client/v1/media/*` family (Matrix 1.11), and the older
//! `/_matrix/media/v3/*` ones: uploads (which have no newer path yet), and downloads that serve
//! only media from before the authenticated-media cut-over.
//!
//! Bodies here are bytes, not JSON, so these handlers read requests and build responses
//! themselves: uploads stream to disk under the size limit, downloads stream from disk with
//! range support. Every response of the family, errors included, carries the serving headers
//! of `security_headers`.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request, State},
    middleware,
    response::{IntoResponse, Response},
};
use futures::TryStreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use ruma::api::client::{authenticated_media as authed, media as legacy};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{
    error::{Error, Result},
    http::{route, ruma::Authed},
    service::{
        AppState,
        media::{Endpoint, UploadMeta, check_media_id, thumbnail::Method},
    },
};

// The legacy endpoints are deprecated by the spec, and still served on purpose.
#[allow(deprecated)]
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let m = Router::new();
    let m = route::<legacy::create_content::v3::Request, _, _>(m, create_content);
    let m = route::<legacy::create_mxc_uri::v1::Request, _, _>(m, create_mxc_uri);
    let m = route::<legacy::create_content_async::v3::Request, _, _>(m, create_content_async);
    let m = route::<legacy::get_media_config::v3::Request, _, _>(m, get_media_config);
    let m = route::<authed::get_media_config::v1::Request, _, _>(m, get_media_config);
    let m = route::<authed::get_content::v1::Request, _, _>(m, get_content);
    let m = route::<authed::get_content_as_filename::v1::Request, _, _>(m, get_content_as_filename);
    let m = route::<authed::get_content_thumbnail::v1::Request, _, _>(m, get_content_thumbnail);
    let m = route::<authed::get_media_preview::v1::Request, _, _>(m, get_media_preview);
    let m = route::<legacy::get_content::v3::Request, _, _>(m, get_content_legacy);
    let m = route::<legacy::get_content_as_filename::v3::Request, _, _>(m, get_content_as_filename_legacy);
    let m = route::<legacy::get_content_thumbnail::v3::Request, _, _>(m, get_content_thumbnail_legacy);
    let m = route::<legacy::get_media_preview::v3::Request, _, _>(m, get_media_preview);
    r.merge(m.layer(middleware::map_response(security_headers)))
}

/// The serving headers of the Synapse README's security note and the spec's "Content
/// repository" section: a browser that opens media directly must not run it as a page.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    resp
}

/// Content types that may be shown inline (spec: "Serving inline content"); everything else is
/// served as an attachment.
const INLINE_TYPES: &[&str] = &[
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

fn query<T: serde::de::DeserializeOwned>(parts: &Parts) -> Result<T> {
    axum::extract::Query::<T>::try_from_uri(&parts.uri).map(|q| q.0).map_err(|e| Error::invalid_param(e.body_text()))
}

#[derive(Deserialize)]
struct UploadQuery {
    filename: Option<String>,
}

fn content_type(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
}

fn upload_meta<'a>(parts: &Parts, content_type: &'a Option<String>, q: &'a UploadQuery) -> UploadMeta<'a> {
    UploadMeta {
        content_type: content_type.as_deref(),
        filename: q.filename.as_deref(),
        declared_len: content_length(parts),
    }
}

fn body_stream(body: Body) -> impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> {
    body.into_data_stream()
}

/// POST /_matrix/media/v3/upload
pub async fn create_content(Authed(session): Authed, State(state): State<AppState>, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let q: UploadQuery = query(&parts)?;
    let content_type = content_type(&parts);
    let media_id =
        state.media.upload(session.user_id.as_str(), upload_meta(&parts, &content_type, &q), body_stream(body)).await?;
    Ok(Json(json!({ "content_uri": format!("mxc://{}/{media_id}", state.config.server_name) })).into_response())
}

/// POST /_matrix/media/v1/create
pub async fn create_mxc_uri(Authed(session): Authed, State(state): State<AppState>) -> Result<Response> {
    state.limits.user(&state.limits.media_create, &session.user_id)?;
    let (media_id, expires) = state.media.create_pending(session.user_id.as_str()).await?;
    Ok(Json(json!({
        "content_uri": format!("mxc://{}/{media_id}", state.config.server_name),
        "unused_expires_at": expires,
    }))
    .into_response())
}

/// PUT /_matrix/media/v3/upload/{serverName}/{mediaId}
pub async fn create_content_async(
    Authed(session): Authed,
    State(state): State<AppState>,
    Path((server_name, media_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let q: UploadQuery = query(&parts)?;
    let content_type = content_type(&parts);
    state
        .media
        .upload_pending(
            session.user_id.as_str(),
            &server_name,
            &media_id,
            upload_meta(&parts, &content_type, &q),
            body_stream(body),
        )
        .await?;
    Ok(Json(json!({})).into_response())
}

/// GET /_matrix/client/v1/media/config (and the legacy /_matrix/media/v3/config)
pub async fn get_media_config(_: Authed, State(state): State<AppState>) -> Result<Response> {
    Ok(Json(json!({ "m.upload.size": state.media.max_upload_size() })).into_response())
}

#[derive(Deserialize, Default)]
struct DownloadQuery {
    timeout_ms: Option<u64>,
}

/// GET /_matrix/client/v1/media/download/{serverName}/{mediaId}
pub async fn get_content(
    _: Authed,
    State(state): State<AppState>,
    Path((server_name, media_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    download(state, server_name, media_id, None, req, Endpoint::Authenticated).await
}

/// GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}
pub async fn get_content_as_filename(
    _: Authed,
    State(state): State<AppState>,
    Path((server_name, media_id, filename)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response> {
    download(state, server_name, media_id, Some(filename), req, Endpoint::Authenticated).await
}

/// GET /_matrix/media/v3/download/{serverName}/{mediaId} (deprecated: pre-cut-over media only)
pub async fn get_content_legacy(
    State(state): State<AppState>,
    Path((server_name, media_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    download(state, server_name, media_id, None, req, Endpoint::Legacy).await
}

/// GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName} (deprecated)
pub async fn get_content_as_filename_legacy(
    State(state): State<AppState>,
    Path((server_name, media_id, filename)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response> {
    download(state, server_name, media_id, Some(filename), req, Endpoint::Legacy).await
}

async fn download(
    state: AppState,
    origin: String,
    media_id: String,
    filename: Option<String>,
    req: Request,
    endpoint: Endpoint,
) -> Result<Response> {
    let (parts, _) = req.into_parts();
    check_media_id(&media_id)?;
    let q: DownloadQuery = query(&parts)?;
    let content = state.media.get(&origin, &media_id, q.timeout_ms.map(Duration::from_millis), endpoint).await?;
    let content_type = content.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
    let filename = filename.or(content.filename.clone());
    let disposition = content_disposition(&content_type, filename.as_deref());
    serve_file(&state, &parts.headers, &content.sha256, content.size, &content_type, disposition).await
}

#[derive(Deserialize)]
struct ThumbnailQuery {
    width: Option<u32>,
    height: Option<u32>,
    method: Option<String>,
    animated: Option<bool>,
    timeout_ms: Option<u64>,
}

/// GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}
pub async fn get_content_thumbnail(
    _: Authed,
    State(state): State<AppState>,
    Path((server_name, media_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    thumbnail(state, server_name, media_id, req, Endpoint::Authenticated).await
}

/// GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId} (deprecated)
pub async fn get_content_thumbnail_legacy(
    State(state): State<AppState>,
    Path((server_name, media_id)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    thumbnail(state, server_name, media_id, req, Endpoint::Legacy).await
}

async fn thumbnail(
    state: AppState,
    origin: String,
    media_id: String,
    req: Request,
    endpoint: Endpoint,
) -> Result<Response> {
    let (parts, _) = req.into_parts();
    check_media_id(&media_id)?;
    let q: ThumbnailQuery = query(&parts)?;
    let (Some(width), Some(height)) = (q.width, q.height) else {
        return Err(Error::missing_param("width and height are required"));
    };
    let method = match q.method.as_deref() {
        None | Some("scale") => Method::Scale,
        Some("crop") => Method::Crop,
        Some(other) => {
            return Err(Error::invalid_param(format!("Unknown thumbnail method `{other}`: use crop or scale")));
        }
    };
    let t = state
        .media
        .thumbnail(
            &origin,
            &media_id,
            width,
            height,
            method,
            q.animated.unwrap_or(false),
            q.timeout_ms.map(Duration::from_millis),
            endpoint,
        )
        .await?;
    let ext = t.content_type.rsplit('/').next().unwrap_or("png").to_owned();
    // Thumbnails are always images of the inline list (spec: "MUST be inline").
    let disposition = format!("inline; filename=\"thumbnail.{ext}\"");
    serve_file(&state, &parts.headers, &t.sha256, t.size, &t.content_type, disposition).await
}

#[derive(Deserialize)]
struct PreviewQuery {
    url: Option<String>,
}

/// GET /_matrix/client/v1/media/preview_url (and the legacy /_matrix/media/v3/preview_url)
pub async fn get_media_preview(_: Authed, State(state): State<AppState>, req: Request) -> Result<Response> {
    let (parts, _) = req.into_parts();
    let q: PreviewQuery = query(&parts)?;
    let url = q.url.ok_or_else(|| Error::missing_param("`url` is required"))?;
    Ok(Json(state.media.preview_url(&url).await?).into_response())
}

/// `inline` only for the safe list, `attachment` otherwise; the file name sanitised and, when
/// not plain ASCII, encoded as RFC 6266 / RFC 8187 `filename*`.
pub fn content_disposition(content_type: &str, filename: Option<&str>) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let kind = if INLINE_TYPES.contains(&essence.as_str()) { "inline" } else { "attachment" };
    let Some(name) = filename.map(sanitise_filename).filter(|n| !n.is_empty()) else {
        return kind.to_owned();
    };
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        format!("{kind}; filename=\"{name}\"")
    } else {
        let mut encoded = String::new();
        for b in name.bytes() {
            // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("{kind}; filename*=utf-8''{encoded}")
    }
}

/// Drops what could end the header or the quoted string, or name a folder.
fn sanitise_filename(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/' | ';')).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').to_owned();
    trimmed.chars().take(255).collect()
}

/// A single byte range of a `Range` header, resolved against `size`: `Ok(None)` for no (or an
/// unsupported multi-) range, `Err` when it cannot be satisfied.
/// The byte range a `Range` header asks for (RFC 9110, 14.2). A header that does not parse is
/// ignored and several ranges get the whole file, as the RFC allows; a range outside the file
/// is `Err` (416).
fn parse_range(headers: &HeaderMap, size: u64) -> std::result::Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Ok(parsed) = http_range_header::parse_range_header(spec) else { return Ok(None) };
    match parsed.validate(size).map_err(|_| ())?.as_slice() {
        [one] => Ok(Some((*one.start(), *one.end()))),
        _ => Ok(None),
    }
}

async fn serve_file(
    state: &AppState,
    req_headers: &HeaderMap,
    sha256: &str,
    size: u64,
    content_type: &str,
    disposition: String,
) -> Result<Response> {
    let mut file = state
        .media
        .files
        .open_file(sha256)
        .await
        .map_err(|e| Error::Internal(anyhow::Error::new(e).context("opening media")))?;
    let mut headers = HeaderMap::new();
    let content_type = if content_type.starts_with("text/") && !content_type.contains("charset") {
        format!("{content_type}; charset=utf-8")
    } else {
        content_type.to_owned()
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Content never changes under an mxc URI; authenticated responses are private to the user.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    let (status, start, len) = match parse_range(req_headers, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((s, e))) => {
            headers
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {s}-{e}/{size}")).expect("ascii"));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        Err(()) => {
            let mut resp = Error::matrix(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ruma::api::error::ErrorKind::Unknown,
                format!("The content is {size} bytes long"),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Ok(resp);
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("seeking in media")))?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024).map_err(std::io::Error::other);
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_inline_only_for_safe_types_and_names_cannot_break_the_header() {
        assert_eq!(content_disposition("image/png", Some("cat.png")), "inline; filename=\"cat.png\"");
        assert_eq!(content_disposition("text/html", Some("page.html")), "attachment; filename=\"page.html\"");
        assert_eq!(content_disposition("image/svg+xml", None), "attachment");
        assert_eq!(content_disposition("IMAGE/PNG; x=y", None), "inline");
        assert_eq!(
            content_disposition("application/pdf", Some("a\"b\r\nSet-Cookie: x=1;.pdf")),
            "attachment; filename=\"abSet-Cookie: x=1.pdf\""
        );
        assert_eq!(content_disposition("text/plain", Some("../../etc/passwd")), "inline; filename=\"etcpasswd\"");
        assert_eq!(
            content_disposition("image/jpeg", Some("Grüße 😀.jpg")),
            "inline; filename*=utf-8''Gr%C3%BC%C3%9Fe%20%F0%9F%98%80.jpg"
        );
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(parse_range(&HeaderMap::new(), 100), Ok(None));
        assert_eq!(parse_range(&h("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(&h("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(&h("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(&h("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(&h("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(&h("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(&h("bytes=5-2"), 100), Err(()));
        // A header that does not parse is ignored: the whole file, as RFC 9110 allows.
        assert_eq!(parse_range(&h("bytes=x-y"), 100), Ok(None));
    }
}
