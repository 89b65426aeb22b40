//! The content repository over real HTTP (spec: Client-Server API, "Content repository"):
//! uploads, downloads, thumbnails, limits, asynchronous uploads, serving headers and URL
//! previews with their protection against server-side request forgery.

mod common;

use std::{
    io::Cursor,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{SERVER_NAME, TestServer, assert_err};
use image::{AnimationDecoder, DynamicImage, ImageEncoder, ImageFormat};
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

struct Got {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_else(|| panic!("no {name} header"))
    }
    fn err(&self) -> (StatusCode, Value) {
        (self.status, self.json())
    }
}

async fn send(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Got {
    let mut req = s.http.request(method, format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap().to_vec();
    Got { status, headers, body }
}

async fn upload(s: &TestServer, token: &str, content_type: &str, filename: Option<&str>, body: Vec<u8>) -> Got {
    let path = match filename {
        Some(f) => format!("/_matrix/media/v3/upload?filename={}", urlencode(f)),
        None => "/_matrix/media/v3/upload".to_owned(),
    };
    send(s, Method::POST, &path, Some(token), &[("content-type", content_type)], Some(body)).await
}

/// Uploads and returns the media ID (the mxc URI's last segment).
async fn upload_id(s: &TestServer, token: &str, content_type: &str, body: Vec<u8>) -> String {
    let got = upload(s, token, content_type, None, body).await;
    assert_eq!(got.status, StatusCode::OK, "{}", String::from_utf8_lossy(&got.body));
    let uri = got.json()["content_uri"].as_str().unwrap().to_owned();
    let prefix = format!("mxc://{SERVER_NAME}/");
    assert!(uri.starts_with(&prefix), "{uri}");
    uri[prefix.len()..].to_owned()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn download_path(media_id: &str) -> String {
    format!("/_matrix/client/v1/media/download/{SERVER_NAME}/{media_id}")
}

/// The serving headers every media response must carry (Synapse README security note).
#[track_caller]
fn assert_safe_headers(got: &Got) {
    assert_eq!(
        got.header("content-security-policy"),
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
    );
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(got.header("cross-origin-resource-policy"), "cross-origin");
}

/// Content files in the store (the temporary folder excluded).
fn stored_files(s: &TestServer) -> usize {
    let root = s.dir.path().join("media");
    std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "tmp" && e.file_type().unwrap().is_dir())
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

fn temporary_files(s: &TestServer) -> usize {
    std::fs::read_dir(s.dir.path().join("media").join("tmp")).unwrap().count()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x % 251) as u8, (y % 241) as u8, 90, 255]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    image::load_from_memory(bytes).expect("a decodable image").to_rgba8().dimensions()
}

#[tokio::test]
async fn an_upload_comes_back_byte_for_byte_with_its_name_type_and_safe_headers() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let text = "Shopping list: milk, eggs".as_bytes().to_vec();
    let got = upload(&s, &alice, "text/plain", Some("list.txt"), text.clone()).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_safe_headers(&got);
    let id = got.json()["content_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();

    // Any signed-in user may download it (media is not tied to rooms).
    let got = send(&s, Method::GET, &download_path(&id), Some(&bob), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, text);
    assert_eq!(got.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(got.header("content-disposition"), "inline; filename=\"list.txt\"");
    assert_eq!(got.header("content-length"), text.len().to_string());
    assert_safe_headers(&got);

    // The file name in the path wins, and non-ASCII names use RFC 6266 encoding.
    let got =
        send(&s, Method::GET, &format!("{}/{}", download_path(&id), urlencode("Einkäufe.txt")), Some(&bob), &[], None)
            .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-disposition"), "inline; filename*=utf-8''Eink%C3%A4ufe.txt");

    // Authenticated media needs a token; errors carry the safe headers as well.
    let got = send(&s, Method::GET, &download_path(&id), None, &[], None).await;
    assert_err(&got.err(), 401, "M_MISSING_TOKEN");
    assert_safe_headers(&got);
    // New media is not served on the deprecated unauthenticated endpoint.
    let got = send(&s, Method::GET, &format!("/_matrix/media/v3/download/{SERVER_NAME}/{id}"), None, &[], None).await;
    assert_err(&got.err(), 404, "M_NOT_FOUND");

    let got = send(&s, Method::GET, "/_matrix/client/v1/media/config", Some(&alice), &[], None).await;
    assert_eq!(got.json()["m.upload.size"], 50 * 1024 * 1024);
    let (_, versions) = s.get("/_matrix/client/versions", None).await;
    assert!(versions["versions"].as_array().unwrap().iter().any(|v| v == "v1.11"), "{versions}");
}

#[tokio::test]
async fn active_content_is_an_attachment_and_a_hostile_file_name_cannot_inject_headers() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    for (ct, name) in [("text/html", "page.html"), ("image/svg+xml", "logo.svg"), ("application/javascript", "x.js")] {
        let id = upload_id(&s, &alice, ct, b"<script>alert(1)</script>".to_vec()).await;
        let got = send(&s, Method::GET, &format!("{}/{name}", download_path(&id)), Some(&alice), &[], None).await;
        assert_eq!(got.header("content-disposition"), format!("attachment; filename=\"{name}\""), "{ct}");
        assert_eq!(
            got.header("content-type"),
            if ct.starts_with("text/") { format!("{ct}; charset=utf-8") } else { ct.to_owned() }
        );
        assert_safe_headers(&got);
    }
    let got =
        upload(&s, &alice, "application/pdf", Some("a\"\r\nSet-Cookie: stolen=1;.pdf"), b"%PDF-1.4".to_vec()).await;
    let id = got.json()["content_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await;
    assert!(got.headers.get("set-cookie").is_none());
    assert_eq!(got.header("content-disposition"), "attachment; filename=\"aSet-Cookie: stolen=1.pdf\"");
}

#[tokio::test]
async fn identical_uploads_share_one_file() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let photo = png(64, 64);
    let a = upload_id(&s, &alice, "image/png", photo.clone()).await;
    let b = upload_id(&s, &bob, "image/png", photo.clone()).await;
    assert_ne!(a, b, "each upload gets its own media ID");
    assert_eq!(stored_files(&s), 1);
    for id in [a, b] {
        assert_eq!(send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await.body, photo);
    }
    upload_id(&s, &alice, "image/png", png(65, 64)).await;
    assert_eq!(stored_files(&s), 2);
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_413_and_leaves_nothing_behind() {
    let s = TestServer::start_with(|c| c.max_upload_size = hearth_server::config::ByteSize(10_000)).await;
    let alice = s.user("alice").await;
    // Declared too large: refused from the header.
    let got = upload(&s, &alice, "application/octet-stream", None, vec![7; 10_001]).await;
    assert_err(&got.err(), 413, "M_TOO_LARGE");
    assert_safe_headers(&got);
    // Chunked, with no length: cut off while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![1u8; 4000])).collect();
    let resp = s
        .http
        .post(format!("{}/_matrix/media/v3/upload", s.base))
        .bearer_auth(&alice)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.json::<Value>().await.unwrap()["errcode"], "M_TOO_LARGE");
    assert_eq!(stored_files(&s), 0);
    assert_eq!(temporary_files(&s), 0);
    // Exactly at the limit is fine.
    upload_id(&s, &alice, "application/octet-stream", vec![7; 10_000]).await;
    assert_eq!(stored_files(&s), 1);
}

#[tokio::test]
async fn a_truncated_upload_stores_nothing() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {alice}\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&[0u8; 30_000]).await.unwrap();
    conn.flush().await.unwrap();
    drop(conn); // the phone lost its signal
    // The server notices the broken body and removes the partial file.
    for _ in 0..100 {
        if temporary_files(&s) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(temporary_files(&s), 0);
    assert_eq!(stored_files(&s), 0);
    // And the user's quota is not charged: a later upload works as usual.
    upload_id(&s, &alice, "text/plain", b"hello".to_vec()).await;
}

#[tokio::test]
async fn a_user_past_the_storage_quota_gets_resource_limit_exceeded() {
    let s = TestServer::start_with(|c| {
        c.media_storage_quota_per_user = Some(hearth_server::config::ByteSize(1500));
        c.admin_contact = Some("mailto:admin@hearth.test".to_owned());
    })
    .await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    upload_id(&s, &alice, "application/octet-stream", vec![1; 1000]).await;
    let got = upload(&s, &alice, "application/octet-stream", None, vec![2; 600]).await;
    assert_err(&got.err(), 403, "M_RESOURCE_LIMIT_EXCEEDED");
    assert_eq!(got.json()["admin_contact"], "mailto:admin@hearth.test");
    assert_eq!(stored_files(&s), 1, "the refused upload left no file");
    upload_id(&s, &alice, "application/octet-stream", vec![3; 500]).await;
    // The quota is per user.
    upload_id(&s, &bob, "application/octet-stream", vec![4; 1400]).await;
}

#[tokio::test]
async fn asynchronous_uploads_reserve_an_id_that_downloads_wait_for() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let got = send(&s, Method::POST, "/_matrix/media/v1/create", Some(&alice), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    let body = got.json();
    let uri = body["content_uri"].as_str().unwrap().to_owned();
    assert!(body["unused_expires_at"].as_i64().unwrap() > 0);
    let id = uri.rsplit('/').next().unwrap().to_owned();
    let put_path = format!("/_matrix/media/v3/upload/{SERVER_NAME}/{id}");

    // Not there yet: a short wait ends in 504 M_NOT_YET_UPLOADED.
    let got = send(&s, Method::GET, &format!("{}?timeout_ms=100", download_path(&id)), Some(&bob), &[], None).await;
    assert_err(&got.err(), 504, "M_NOT_YET_UPLOADED");

    // Another user cannot fill alice's reservation.
    let got =
        send(&s, Method::PUT, &put_path, Some(&bob), &[("content-type", "text/plain")], Some(b"bob's".to_vec())).await;
    assert_err(&got.err(), 403, "M_FORBIDDEN");

    // A download waiting when the content arrives gets it.
    let waiting = {
        let (http, url, bob) =
            (s.http.clone(), format!("{}{}?timeout_ms=10000", s.base, download_path(&id)), bob.clone());
        tokio::spawn(async move { http.get(url).bearer_auth(bob).send().await.unwrap().bytes().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = send(
        &s,
        Method::PUT,
        &put_path,
        Some(&alice),
        &[("content-type", "text/plain")],
        Some(b"late content".to_vec()),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", String::from_utf8_lossy(&got.body));
    assert_eq!(&waiting.await.unwrap()[..], b"late content");

    let got =
        send(&s, Method::PUT, &put_path, Some(&alice), &[("content-type", "text/plain")], Some(b"again".to_vec()))
            .await;
    assert_err(&got.err(), 409, "M_CANNOT_OVERWRITE_MEDIA");
    let got = send(
        &s,
        Method::PUT,
        &format!("/_matrix/media/v3/upload/{SERVER_NAME}/neverreserved"),
        Some(&alice),
        &[],
        Some(b"x".to_vec()),
    )
    .await;
    assert_err(&got.err(), 404, "M_NOT_FOUND");

    // At most five reservations wait at once.
    for _ in 0..5 {
        assert_eq!(
            send(&s, Method::POST, "/_matrix/media/v1/create", Some(&bob), &[], None).await.status,
            StatusCode::OK
        );
    }
    let got = send(&s, Method::POST, "/_matrix/media/v1/create", Some(&bob), &[], None).await;
    assert_err(&got.err(), 429, "M_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn an_unused_reservation_expires() {
    let s = TestServer::start_with(|c| {
        c.unused_expiration_time = hearth_server::config::HumanDuration(Duration::from_millis(300));
        c.max_pending_media_uploads = 1;
    })
    .await;
    let alice = s.user("alice").await;
    let got = send(&s, Method::POST, "/_matrix/media/v1/create", Some(&alice), &[], None).await;
    let id = got.json()["content_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert_err(
        &send(&s, Method::POST, "/_matrix/media/v1/create", Some(&alice), &[], None).await.err(),
        429,
        "M_LIMIT_EXCEEDED",
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = send(
        &s,
        Method::PUT,
        &format!("/_matrix/media/v3/upload/{SERVER_NAME}/{id}"),
        Some(&alice),
        &[],
        Some(b"x".to_vec()),
    )
    .await;
    assert_err(&got.err(), 404, "M_NOT_FOUND");
    assert_err(&send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await.err(), 404, "M_NOT_FOUND");
    // The expired reservation no longer counts against the limit.
    assert_eq!(
        send(&s, Method::POST, "/_matrix/media/v1/create", Some(&alice), &[], None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn invalid_media_ids_and_traversal_attempts_are_refused() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    std::fs::write(s.dir.path().join("secret.txt"), b"do not serve").unwrap();
    for id in ["..%2F..%2Fsecret.txt", "..%2F..%2F..%2F", "abc.def", "a%00b", "caf%C3%A9", "%2e%2e%2fsecret.txt"] {
        let got = send(&s, Method::GET, &download_path(id), Some(&alice), &[], None).await;
        assert!(!String::from_utf8_lossy(&got.body).contains("do not serve"), "{id}");
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{id}");
        assert_err(&got.err(), 400, "M_INVALID_PARAM");
    }
    // A dot segment is resolved by the client's URL parser before sending: the path then names
    // no endpoint at all.
    let got =
        send(&s, Method::GET, &format!("{}/%2e%2e/%2e%2e/secret.txt", download_path("x")), Some(&alice), &[], None)
            .await;
    assert!(!String::from_utf8_lossy(&got.body).contains("do not serve"));
    assert_err(&got.err(), 404, "M_UNRECOGNIZED");
    let got = send(&s, Method::GET, &download_path("doesNotExist123"), Some(&alice), &[], None).await;
    assert_err(&got.err(), 404, "M_NOT_FOUND");
    let got =
        send(&s, Method::GET, "/_matrix/client/v1/media/download/other.example/abc", Some(&alice), &[], None).await;
    assert_err(&got.err(), 404, "M_NOT_FOUND");
    let got = send(
        &s,
        Method::GET,
        "/_matrix/client/v1/media/thumbnail/hearth.test/abc?width=abc&height=2",
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn audio_and_video_can_be_fetched_by_range() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let content: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let id = upload_id(&s, &alice, "audio/ogg", content.clone()).await;
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[("range", "bytes=100-199")], None).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), "bytes 100-199/1000");
    assert_eq!(got.body, content[100..200]);
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[("range", "bytes=-10")], None).await;
    assert_eq!(got.body, content[990..]);
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[("range", "bytes=2000-")], None).await;
    assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(got.header("content-range"), "bytes */1000");
    assert_safe_headers(&got);
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await;
    assert_eq!(got.header("accept-ranges"), "bytes");
    assert_eq!(got.body, content);
}

fn thumb_path(id: &str, w: u32, h: u32, method: &str) -> String {
    format!("/_matrix/client/v1/media/thumbnail/{SERVER_NAME}/{id}?width={w}&height={h}&method={method}")
}

#[tokio::test]
async fn thumbnails_have_the_sizes_the_spec_asks_for_and_are_cached() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let original = png(1000, 500);
    let id = upload_id(&s, &alice, "image/png", original.clone()).await;

    let got = send(&s, Method::GET, &thumb_path(&id, 32, 32, "crop"), Some(&alice), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "image/png");
    assert_eq!(got.header("content-disposition"), "inline; filename=\"thumbnail.png\"");
    assert_safe_headers(&got);
    assert_eq!(dims(&got.body), (32, 32));

    // 100x100 rounds up to the 320x240 scale size: never smaller than asked.
    let first = send(&s, Method::GET, &thumb_path(&id, 100, 100, "scale"), Some(&alice), &[], None).await;
    assert_eq!(dims(&first.body), (320, 160));
    let files = stored_files(&s);
    let again = send(&s, Method::GET, &thumb_path(&id, 100, 100, "scale"), Some(&alice), &[], None).await;
    assert_eq!(again.body, first.body);
    assert_eq!(stored_files(&s), files, "the second request used the cached thumbnail");

    // Larger than the image: the original, never upscaled.
    let got = send(&s, Method::GET, &thumb_path(&id, 1200, 1200, "scale"), Some(&alice), &[], None).await;
    assert_eq!(got.body, original);

    // A photo stored sideways with an EXIF orientation comes out upright.
    let jpeg = {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(200, 100, image::Rgb([200, 30, 30])));
        let mut out = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new(&mut out);
        // TIFF header (big endian), one IFD entry: Orientation (0x0112) = 6, "rotate 90° clockwise".
        enc.set_exif_metadata(
            b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"
                .to_vec(),
        )
        .unwrap();
        enc.write_image(img.as_bytes(), 200, 100, image::ExtendedColorType::Rgb8).unwrap();
        out
    };
    let id = upload_id(&s, &alice, "image/jpeg", jpeg).await;
    let got = send(&s, Method::GET, &thumb_path(&id, 320, 240, "scale"), Some(&alice), &[], None).await;
    assert_eq!(got.header("content-type"), "image/jpeg");
    assert_eq!(dims(&got.body), (100, 200), "rotated upright");
}

#[tokio::test]
async fn an_animated_gif_gets_an_animated_thumbnail_only_when_asked() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let gif = {
        let mut out = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.set_repeat(image::codecs::gif::Repeat::Infinite).unwrap();
            let frames = (0..3u8).map(|i| {
                image::Frame::from_parts(
                    image::RgbaImage::from_pixel(200, 200, image::Rgba([i * 80, 0, 0, 255])),
                    0,
                    0,
                    image::Delay::from_numer_denom_ms(100, 1),
                )
            });
            enc.encode_frames(frames).unwrap();
        }
        out
    };
    let id = upload_id(&s, &alice, "image/gif", gif).await;
    let got =
        send(&s, Method::GET, &format!("{}&animated=true", thumb_path(&id, 96, 96, "crop")), Some(&alice), &[], None)
            .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "image/gif");
    let frames =
        image::codecs::gif::GifDecoder::new(Cursor::new(&got.body)).unwrap().into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].buffer().dimensions(), (96, 96));
    let got = send(&s, Method::GET, &thumb_path(&id, 96, 96, "crop"), Some(&alice), &[], None).await;
    assert_eq!(got.header("content-type"), "image/png", "not animated unless asked");
    assert_eq!(dims(&got.body), (96, 96));
}

#[tokio::test]
async fn images_that_cannot_be_thumbnailed_say_so_and_stay_downloadable() {
    let s = TestServer::start_with(|c| c.max_image_pixels = hearth_server::config::ByteSize(4_000_000)).await;
    let alice = s.user("alice").await;
    // A decompression bomb: 5,000 x 5,000 pixels in a few kilobytes.
    let bomb = {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageLuma8(image::GrayImage::new(5000, 5000)).write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    };
    assert!(bomb.len() < 200_000);
    let id = upload_id(&s, &alice, "image/png", bomb.clone()).await;
    let got = send(&s, Method::GET, &thumb_path(&id, 32, 32, "crop"), Some(&alice), &[], None).await;
    assert_err(&got.err(), 413, "M_TOO_LARGE");
    assert_eq!(send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await.body, bomb);

    let mut broken = png(300, 300);
    broken.truncate(broken.len() / 2);
    for (ct, bytes) in [("image/png", broken), ("application/pdf", b"%PDF-1.4 a document".to_vec())] {
        let id = upload_id(&s, &alice, ct, bytes.clone()).await;
        let got = send(&s, Method::GET, &thumb_path(&id, 32, 32, "crop"), Some(&alice), &[], None).await;
        assert_err(&got.err(), 400, "M_UNKNOWN");
        assert_eq!(send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await.body, bytes);
    }
}

/// A small web server on a loopback address that counts its requests: the target a forged
/// preview request would reach.
struct Site {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn site(bind: &str, router: impl FnOnce(String) -> axum::Router) -> Site {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = router(format!("http://{addr}")).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        },
    ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Site { addr, hits }
}

fn page_router(image: Vec<u8>) -> impl FnOnce(String) -> axum::Router {
    move |_base| {
        use axum::{response::Html, routing::get};
        axum::Router::new()
            .route(
                "/article",
                get(|| async {
                    Html(
                        r#"<html><head><title>Fallback</title>
                        <meta property="og:title" content="Grandma's birthday">
                        <meta property="og:description" content="Photos from the party">
                        <meta property="og:image" content="/cover.png"></head><body>...</body></html>"#,
                    )
                }),
            )
            .route(
                "/cover.png",
                get(move || {
                    let image = image.clone();
                    async move { ([(header::CONTENT_TYPE, "image/png")], image) }
                }),
            )
            .route("/huge", get(|| async { Html("x".repeat(300_000)) }))
    }
}

#[tokio::test]
async fn url_previews_are_off_unless_enabled() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let got = send(
        &s,
        Method::GET,
        "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fexample.org%2F",
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 404, "M_UNRECOGNIZED");
}

#[tokio::test]
async fn url_previews_never_reach_internal_addresses() {
    let target = site("127.0.0.1:0", page_router(png(10, 10))).await;
    let s = TestServer::start_with(|c| c.url_preview_enabled = true).await;
    let alice = s.user("alice").await;
    let port = target.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/article"),
        format!("http://localhost:{port}/article"), // resolves to loopback
        format!("http://[::ffff:127.0.0.1]:{port}/article"),
        format!("http://2130706433:{port}/article"), // 127.0.0.1 as a number
        format!("http://127.1:{port}/article"),
    ] {
        let got = send(
            &s,
            Method::GET,
            &format!("/_matrix/client/v1/media/preview_url?url={}", urlencode(&url)),
            Some(&alice),
            &[],
            None,
        )
        .await;
        assert_err(&got.err(), 403, "M_FORBIDDEN");
    }
    assert_eq!(target.hits.load(Ordering::SeqCst), 0, "the internal server was contacted");
    let got = send(
        &s,
        Method::GET,
        "/_matrix/client/v1/media/preview_url?url=file%3A%2F%2F%2Fetc%2Fpasswd",
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed() {
    // The allowed site (as if it were public) redirects to another loopback address that the
    // admin did not allow.
    let internal = site("127.0.0.2:0", page_router(png(10, 10))).await;
    let to = format!("http://{}/article", internal.addr);
    let public = site("127.0.0.1:0", move |_| {
        axum::Router::new().route(
            "/go",
            axum::routing::get(move || {
                let to = to.clone();
                async move { axum::response::Redirect::temporary(&to) }
            }),
        )
    })
    .await;
    let s = TestServer::start_with(|c| {
        c.url_preview_enabled = true;
        c.url_preview_ip_range_whitelist = vec!["127.0.0.1/32".to_owned()];
    })
    .await;
    let alice = s.user("alice").await;
    let url = format!("http://{}/go", public.addr);
    let got = send(
        &s,
        Method::GET,
        &format!("/_matrix/client/v1/media/preview_url?url={}", urlencode(&url)),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 403, "M_FORBIDDEN");
    assert_eq!(public.hits.load(Ordering::SeqCst), 1);
    assert_eq!(internal.hits.load(Ordering::SeqCst), 0, "the redirect target was contacted");
}

#[tokio::test]
async fn a_preview_shows_title_description_and_image_and_is_cached() {
    let cover = png(120, 80);
    let web = site("127.0.0.1:0", page_router(cover.clone())).await;
    let s = TestServer::start_with(|c| {
        c.url_preview_enabled = true;
        c.url_preview_ip_range_whitelist = vec!["127.0.0.1".to_owned()];
        c.max_spider_size = hearth_server::config::ByteSize(100_000);
    })
    .await;
    let alice = s.user("alice").await;
    let url = format!("http://{}/article", web.addr);
    let path = format!("/_matrix/client/v1/media/preview_url?url={}", urlencode(&url));
    let got = send(&s, Method::GET, &path, Some(&alice), &[], None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", String::from_utf8_lossy(&got.body));
    let og = got.json();
    assert_eq!(og["og:title"], "Grandma's birthday");
    assert_eq!(og["og:description"], "Photos from the party");
    assert_eq!(og["matrix:image:size"], cover.len());
    assert_eq!(og["og:image:width"], 120);
    let mxc = og["og:image"].as_str().unwrap();
    let id = mxc.strip_prefix(&format!("mxc://{SERVER_NAME}/")).expect("the image is stored as our own media");
    assert_eq!(send(&s, Method::GET, &download_path(id), Some(&alice), &[], None).await.body, cover);
    assert_eq!(web.hits.load(Ordering::SeqCst), 2, "the page and its image");

    let again = send(&s, Method::GET, &path, Some(&alice), &[], None).await;
    assert_eq!(again.json(), og);
    assert_eq!(web.hits.load(Ordering::SeqCst), 2, "served from the cache");

    // A page over max_spider_size is not previewed.
    let url = format!("http://{}/huge", web.addr);
    let got = send(
        &s,
        Method::GET,
        &format!("/_matrix/client/v1/media/preview_url?url={}", urlencode(&url)),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 502, "M_UNKNOWN");
}

#[tokio::test]
async fn media_from_before_the_authenticated_media_cut_over_stays_on_the_old_endpoints() {
    // Spec: "Content repository", the 1.12 freeze. Media uploaded while
    // enable_authenticated_media was off keeps working for links in old messages.
    let mut s = TestServer::start_with(|c| c.enable_authenticated_media = false).await;
    let alice = s.user("alice").await;
    let old = upload_id(&s, &alice, "text/plain", b"from 2023".to_vec()).await;
    let legacy = |id: &str| format!("/_matrix/media/v3/download/{SERVER_NAME}/{id}");
    assert_eq!(send(&s, Method::GET, &legacy(&old), None, &[], None).await.body, b"from 2023");

    s.stop().await;
    let moved = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = common::test_config(moved.path());
    assert!(config.enable_authenticated_media, "on by default");
    let s = TestServer::start_in(moved, config).await;
    let (_, login) = s.login("alice", "password1").await;
    let alice = login["access_token"].as_str().unwrap().to_owned();
    let new = upload_id(&s, &alice, "text/plain", b"from today".to_vec()).await;

    let got = send(&s, Method::GET, &legacy(&old), None, &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, b"from 2023");
    assert_safe_headers(&got);
    assert_err(&send(&s, Method::GET, &legacy(&new), None, &[], None).await.err(), 404, "M_NOT_FOUND");
    // Both are on the authenticated endpoint.
    for (id, body) in [(&old, &b"from 2023"[..]), (&new, &b"from today"[..])] {
        assert_eq!(send(&s, Method::GET, &download_path(id), Some(&alice), &[], None).await.body, body);
    }
}

#[tokio::test]
async fn uploads_without_a_type_or_with_a_bad_name_are_handled_safely() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    // No Content-Type: served as an opaque attachment.
    let got =
        send(&s, Method::POST, "/_matrix/media/v3/upload", Some(&alice), &[], Some(b"\x00\x01binary".to_vec())).await;
    assert_eq!(got.status, StatusCode::OK);
    let id = got.json()["content_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await;
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert_eq!(got.header("content-disposition"), "attachment");
    // A file name that is not valid UTF-8 is kept with replacement characters, safely encoded.
    let got = send(
        &s,
        Method::POST,
        "/_matrix/media/v3/upload?filename=%FF%0A",
        Some(&alice),
        &[("content-type", "text/plain")],
        Some(b"x".to_vec()),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    let id = got.json()["content_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let got = send(&s, Method::GET, &download_path(&id), Some(&alice), &[], None).await;
    assert_eq!(got.header("content-disposition"), "inline; filename*=utf-8''%EF%BF%BD");
    // A query parameter of the wrong type is a Matrix error.
    let got = send(&s, Method::GET, &format!("{}?timeout_ms=soon", download_path(&id)), Some(&alice), &[], None).await;
    assert_err(&got.err(), 400, "M_INVALID_PARAM");
    // A wrong token cannot upload.
    let got = send(&s, Method::POST, "/_matrix/media/v3/upload", Some("not-a-token"), &[], Some(b"x".to_vec())).await;
    assert_err(&got.err(), 401, "M_UNKNOWN_TOKEN");
    assert_eq!(stored_files(&s), 2);

    // An image labelled with a scriptable type is thumbnailed, and a small one served as its
    // original, under its real type.
    let id = upload_id(&s, &alice, "image/svg+xml", png(20, 20)).await;
    let got = send(&s, Method::GET, &thumb_path(&id, 32, 32, "scale"), Some(&alice), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "image/png");
    assert_eq!(got.body, png(20, 20));
}

#[tokio::test]
async fn a_site_that_never_answers_gives_up_within_the_time_limit() {
    // Accepts connections and then says nothing, like a tarpit.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let s = TestServer::start_with(|c| {
        c.url_preview_enabled = true;
        c.url_preview_ip_range_whitelist = vec!["127.0.0.1/32".to_owned()];
    })
    .await;
    let alice = s.user("alice").await;
    let started = std::time::Instant::now();
    let url = format!("http://{addr}/slow");
    let got = send(
        &s,
        Method::GET,
        &format!("/_matrix/client/v1/media/preview_url?url={}", urlencode(&url)),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_err(&got.err(), 502, "M_UNKNOWN");
    assert!(got.json()["error"].as_str().unwrap().contains("timed out"), "{}", got.json());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}

/// `media_retention.local_media_lifetime`: media uploaded here that nobody downloaded for that
/// long is gone (row and file) after the sweep, which runs at start; media downloaded since, and
/// a picture in use as someone's avatar, stay.
#[tokio::test]
async fn local_media_nobody_asked_for_is_deleted_after_its_lifetime() {
    let configure = |c: &mut hearth_server::Config| {
        c.media_retention.local_media_lifetime =
            Some(hearth_server::config::HumanDuration(std::time::Duration::from_secs(1)));
    };
    let mut s = TestServer::start_with(configure).await;
    let alice = s.user("alice").await;
    let avatar = upload_id(&s, &alice, "application/octet-stream", vec![1; 3000]).await;
    let seen = upload_id(&s, &alice, "application/octet-stream", vec![2; 3000]).await;
    let forgotten = upload_id(&s, &alice, "application/octet-stream", vec![3; 3000]).await;
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/profile/@alice:{SERVER_NAME}/avatar_url"),
            Some(&alice),
            serde_json::json!({"avatar_url": format!("mxc://{SERVER_NAME}/{avatar}")}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let download = |id: &str| format!("/_matrix/client/v1/media/download/{SERVER_NAME}/{id}");
    let files = |dir: &std::path::Path| {
        let store = dir.join("media");
        common::files_under(&store).into_iter().filter(|p| p.parent() != Some(store.join("tmp").as_path())).count()
    };
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    assert_eq!(files(&data), 3);

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    // Downloaded just before the sweep: its lifetime starts again.
    assert_eq!(send(&s, Method::GET, &download(&seen), Some(&alice), &[], None).await.status, 200);
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let mut config = common::test_config(dir.path());
    configure(&mut config);
    let s = TestServer::start_in(dir, config).await;
    let alice = s.login("alice", "password1").await.1["access_token"].as_str().unwrap().to_owned();
    let got = send(&s, Method::GET, &download(&forgotten), Some(&alice), &[], None).await;
    assert_eq!(got.status, 404, "{}", String::from_utf8_lossy(&got.body));
    assert_eq!(send(&s, Method::GET, &download(&seen), Some(&alice), &[], None).await.status, 200);
    assert_eq!(send(&s, Method::GET, &download(&avatar), Some(&alice), &[], None).await.status, 200, "avatars stay");
    assert_eq!(files(&data), 2, "the forgotten file is gone from the disk");
}
