//! Every failure a client can cause is a Matrix error with the right status (spec: Client-Server
//! API, "Standard error response"), and CORS headers are on every response, errors included.

mod common;

use common::{TestServer, assert_err};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn unknown_endpoint_is_404_unrecognized() {
    let s = TestServer::start().await;
    assert_err(&s.get("/_matrix/client/v3/no_such_thing", None).await, 404, "M_UNRECOGNIZED");
    assert_err(&s.get("/", None).await, 404, "M_UNRECOGNIZED");
}

#[tokio::test]
async fn wrong_method_is_405_unrecognized() {
    let s = TestServer::start().await;
    assert_err(&s.call(Method::DELETE, "/_matrix/client/versions", None, None).await, 405, "M_UNRECOGNIZED");
    assert_err(&s.get("/_matrix/client/v1/login/get_token", None).await, 405, "M_UNRECOGNIZED");
}

#[tokio::test]
async fn malformed_json_is_not_json_and_wrong_shapes_are_bad_json() {
    let s = TestServer::start().await;
    let r = s.raw(Method::POST, "/_matrix/client/v3/login", None, b"{\"type\": ".to_vec()).await;
    assert_err(&r, 400, "M_NOT_JSON");
    let r = s.raw(Method::POST, "/_matrix/client/v3/login", None, b"[1, 2]".to_vec()).await;
    assert_err(&r, 400, "M_BAD_JSON");
    // Wrong type for a field.
    let r = s
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "a"}, "password": 5}),
        )
        .await;
    assert_err(&r, 400, "M_BAD_JSON");
    // Missing required field.
    let token = s.user("alice").await;
    let r = s.post("/_matrix/client/v3/refresh", Some(&token), json!({})).await;
    assert_err(&r, 400, "M_MISSING_PARAM");
}

#[tokio::test]
async fn oversized_body_is_413_too_large_and_changes_nothing() {
    let s = TestServer::start_with(|c| c.max_request_size = hearth_server::config::ByteSize(4096)).await;
    let huge = format!("{{\"username\": \"bob\", \"password\": \"{}\"}}", "x".repeat(10_000));
    let r = s.raw(Method::POST, "/_matrix/client/v3/register", None, huge.into_bytes()).await;
    assert_err(&r, 413, "M_TOO_LARGE");
    // Nothing was created.
    let (st, body) = s.get("/_matrix/client/v3/register/available?username=bob", None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["available"], true);
}

#[tokio::test]
async fn chunked_oversized_body_is_cut_off() {
    let s = TestServer::start_with(|c| c.max_request_size = hearth_server::config::ByteSize(4096)).await;
    // No Content-Length: the limit must hold while streaming too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let resp = s.http.post(format!("{}/_matrix/client/v3/login", s.base)).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["errcode"], "M_TOO_LARGE");
}

#[tokio::test]
async fn missing_and_unknown_tokens() {
    let s = TestServer::start().await;
    assert_err(&s.get("/_matrix/client/v3/account/whoami", None).await, 401, "M_MISSING_TOKEN");
    let r = s.get("/_matrix/client/v3/account/whoami", Some("hat_not_a_real_token")).await;
    assert_err(&r, 401, "M_UNKNOWN_TOKEN");
    assert_ne!(r.1["soft_logout"], true, "a plain unknown token is not a soft logout");
    // A malformed Authorization header is an unknown token, not a crash.
    let resp = s
        .http
        .get(format!("{}/_matrix/client/v3/account/whoami", s.base))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The deprecated query parameter still works.
    let token = s.user("carol").await;
    let (st, body) = s.get(&format!("/_matrix/client/v3/account/whoami?access_token={token}"), None).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user_id"], "@carol:hearth.test");
}

#[tokio::test]
async fn cors_headers_on_success_errors_and_options() {
    let s = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/_matrix/client/versions"),
        (Method::GET, "/_matrix/client/v3/nope"),
        (Method::GET, "/_matrix/client/v3/account/whoami"),
        (Method::OPTIONS, "/_matrix/client/v3/login"),
        (Method::OPTIONS, "/_matrix/client/v3/anything/at/all"),
    ] {
        let resp = s.http.request(method.clone(), format!("{}{path}", s.base)).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{method} {path}");
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("PUT"), "{method} {path}");
        // Header names are case-insensitive, in these lists too.
        let headers = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"), "{method} {path}");
        if method != Method::OPTIONS {
            let exposed = h["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
            assert!(exposed.contains("retry-after"), "a browser client can read how long to wait");
        }
        if method == Method::OPTIONS {
            assert!(resp.status().is_success(), "OPTIONS {path}: {}", resp.status());
        }
    }
}

#[tokio::test]
async fn legacy_r0_paths_reach_the_same_handlers() {
    let s = TestServer::start().await;
    let token = s.user("dave").await;
    let (st, body) = s.get("/_matrix/client/r0/account/whoami", Some(&token)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["user_id"], "@dave:hearth.test");
}

#[tokio::test]
async fn invalid_path_parameters_are_matrix_errors() {
    let s = TestServer::start().await;
    let token = s.user("pat").await;
    // Bytes that are not UTF-8, and a room ID that is not one, reach the path decoding.
    let r = s.get("/_matrix/client/v3/rooms/%FF%FE/state", Some(&token)).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    let r = s.get("/_matrix/client/v3/rooms/not-a-room-id/state", Some(&token)).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    let r = s.get("/_matrix/client/v1/rooms/%FF%FE/threads", Some(&token)).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    // Who asks comes first: without a token the answer says so, whatever the path holds.
    assert_err(&s.get("/_matrix/client/v3/rooms/%FF%FE/state", None).await, 401, "M_MISSING_TOKEN");
    assert_err(&s.get("/_matrix/client/v1/rooms/%FF%FE/threads", None).await, 401, "M_MISSING_TOKEN");
}

/// ruma's login deserializer panics on a body without `type`; that must cost the client a 400,
/// never the server a 500 (found by fuzzing the spec's OpenAPI).
#[tokio::test]
async fn a_login_without_a_type_is_a_missing_parameter_not_a_server_error() {
    let s = TestServer::start().await;
    s.user("lou").await;
    let r = s.raw(Method::POST, "/_matrix/client/v3/login", None, Vec::new()).await;
    assert_err(&r, 400, "M_MISSING_PARAM");
    assert_err(&s.post("/_matrix/client/v3/login", None, json!({})).await, 400, "M_MISSING_PARAM");
    let r = s
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"identifier": {"type": "m.id.user", "user": "lou"}, "password": "password1"}),
        )
        .await;
    assert_err(&r, 400, "M_MISSING_PARAM");
    let r = s.post("/_matrix/client/v3/login", None, json!({"type": 5})).await;
    assert!(r.0 == 400 && r.1["errcode"].is_string(), "{}", r.1);
    // The server is unharmed: a proper login goes through.
    assert_eq!(s.login("lou", "password1").await.0, 200);
}
