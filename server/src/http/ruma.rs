//! The one place where ruma's HTTP traits meet axum: the `Ruma<T>` extractor turns a request
//! into a typed ruma request (body limit, `{}` for empty bodies, path parameters, authentication
//! chosen from the endpoint's metadata, M_NOT_JSON / M_BAD_JSON / M_MISSING_PARAM), and
//! `RumaResponse` turns a typed response back. A ruma upgrade moves this file only.

use std::net::IpAddr;

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request},
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode, request::Parts};
use ruma::api::{
    IncomingRequest, OutgoingResponse,
    auth_scheme::{
        AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken, NoAuthentication,
    },
    error::{DeserializationError, ErrorKind, FromHttpRequestError},
    federation::authentication::ServerSignatures,
    path_builder::PathBuilder,
};

use crate::{
    error::Error,
    service::{AppState, accounts::Session},
};

/// How an endpoint authenticates, read off its ruma metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    None,
    Optional,
    Required,
    /// Server-server requests signed with X-Matrix (federation, a later issue).
    Federation,
}

pub trait AuthRequirement {
    const KIND: AuthKind;
}
impl AuthRequirement for NoAuthentication {
    const KIND: AuthKind = AuthKind::None;
}
impl AuthRequirement for NoAccessToken {
    const KIND: AuthKind = AuthKind::None;
}
impl AuthRequirement for AccessToken {
    const KIND: AuthKind = AuthKind::Required;
}
impl AuthRequirement for AccessTokenOptional {
    const KIND: AuthKind = AuthKind::Optional;
}
// No application services are registered yet, so an appservice token is an ordinary token.
impl AuthRequirement for AppserviceToken {
    const KIND: AuthKind = AuthKind::Required;
}
impl AuthRequirement for AppserviceTokenOptional {
    const KIND: AuthKind = AuthKind::Optional;
}
impl AuthRequirement for ServerSignatures {
    const KIND: AuthKind = AuthKind::Federation;
}

/// A parsed, authenticated ruma request.
pub struct Ruma<T> {
    pub body: T,
    /// Present when the endpoint authenticated a user.
    pub session: Option<Session>,
    /// The client address (from X-Forwarded-For on listeners configured to trust it).
    pub ip: Option<IpAddr>,
    /// The body as sent, for the fields a ruma type does not carry (yet).
    pub raw_body: Bytes,
    /// The server that signed a federation request.
    pub origin: Option<ruma::OwnedServerName>,
    /// Its slot under `rc_federation`, held until the request is answered (dropped with this).
    #[allow(dead_code, reason = "held, never read: dropping it frees the slot")]
    pub federation_slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T> Ruma<T> {
    /// The session of an endpoint whose metadata requires authentication.
    pub fn session(&self) -> &Session {
        self.session.as_ref().expect("endpoint requires authentication, so the extractor set a session")
    }
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|i| i.to_string())
    }
}

/// The client address as seen by the listener, set by the connection layer.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = parts.extensions.get::<ClientIp>() {
        return *ip;
    }
    parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// The access token from `Authorization: Bearer` or the deprecated `access_token` query
/// parameter. A malformed Authorization header is treated as an unknown token.
pub fn access_token(parts: &Parts) -> Result<Option<String>, Error> {
    if let Some(h) = parts.headers.get(http::header::AUTHORIZATION) {
        let value = h.to_str().map_err(|_| Error::unknown_token(false))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Error::unknown_token(false))?;
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(q) = parts.uri.query()
        && let Some((_, v)) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "access_token")
    {
        return Ok(Some(v.into_owned()));
    }
    Ok(None)
}

/// Authenticates per `kind`; `Ok(None)` for unauthenticated endpoints and absent optional tokens.
pub async fn authenticate(state: &AppState, parts: &Parts, kind: AuthKind) -> Result<Option<Session>, Error> {
    let ip = client_ip(parts).map(|i| i.to_string());
    let agent = user_agent(parts);
    match kind {
        AuthKind::None => Ok(None),
        // Checked with the body, in `authenticate_server`.
        AuthKind::Federation => Ok(None),
        AuthKind::Optional => match access_token(parts)? {
            Some(t) => {
                Ok(Some(unless_locked(in_span(state.accounts.authenticate(&t, ip.as_deref(), agent).await?), parts)?))
            }
            None => Ok(None),
        },
        AuthKind::Required => {
            let t = access_token(parts)?.ok_or_else(Error::missing_token)?;
            Ok(Some(unless_locked(in_span(state.accounts.authenticate(&t, ip.as_deref(), agent).await?), parts)?))
        }
    }
}

/// The server that signed a federation request (`X-Matrix`), checked against its keys.
async fn authenticate_server(state: &AppState, parts: &Parts, body: &[u8]) -> Result<ruma::OwnedServerName, Error> {
    let mut request = http::Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION) {
        request = request.header(http::header::AUTHORIZATION, auth);
    }
    let request = request.body(body).map_err(Error::internal)?;
    let origin = state.federation.authenticate(&request).await?;
    tracing::Span::current().record("user", tracing::field::display(&origin));
    Ok(origin)
}

/// The client's User-Agent, as far as it is printable text, cut at 512 bytes: it is stored
/// with the device's last sighting and shown to admins.
fn user_agent(parts: &Parts) -> Option<&str> {
    let ua = parts.headers.get(http::header::USER_AGENT)?.to_str().ok()?.trim();
    let mut end = ua.len().min(512);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    Some(&ua[..end]).filter(|u| !u.is_empty())
}

/// A locked account may only log out (spec: "Account locking"); everything else answers 401
/// M_USER_LOCKED with `soft_logout`, and the session stays for when the lock is lifted.
fn unless_locked(session: Session, parts: &Parts) -> Result<Session, Error> {
    if session.locked {
        let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("");
        if !(parts.method == Method::POST && matches!(route_suffix(route), "logout" | "logout/all")) {
            return Err(crate::service::accounts::locked_error());
        }
    }
    Ok(session)
}

/// A client-server route without its prefix and version: "/_matrix/client/v3/sync" -> "sync";
/// unstable prefixes have one more segment.
fn route_suffix(route: &str) -> &str {
    let rest = route.strip_prefix("/_matrix/client/").unwrap_or(route);
    let rest = rest.strip_prefix("unstable/").map(|r| r.split_once('/').map_or(r, |(_, r)| r)).unwrap_or(rest);
    rest.split_once('/').map_or("", |(_, r)| r)
}

/// Names the user in the request's span (see `http::observe`), for every later log line.
fn in_span(session: Session) -> Session {
    tracing::Span::current().record("user", tracing::field::display(&session.user_id));
    session
}

/// Reads the whole body, refusing more than `limit` bytes with M_TOO_LARGE (early from
/// Content-Length when the client declares it).
pub async fn read_body(parts: &Parts, body: Body, limit: usize) -> Result<Bytes, Error> {
    let too_large = || Error::too_large(format!("Request body is larger than the limit of {limit} bytes"));
    if let Some(len) =
        parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            src = s.source();
        }
        Error::bad_json(format!("Could not read the request body: {e}"))
    })
}

/// Maps a ruma parse failure to the Matrix error a client expects.
pub fn request_error(e: FromHttpRequestError) -> Error {
    match e {
        FromHttpRequestError::MethodMismatch { .. } => {
            Error::unrecognized(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed for this endpoint")
        }
        FromHttpRequestError::Deserialization(d) => deserialization_error(&d),
        other => Error::bad_json(other.to_string()),
    }
}

pub fn deserialization_error(d: &DeserializationError) -> Error {
    let msg = d.to_string();
    match d {
        DeserializationError::Json(j) if j.is_syntax() || j.is_eof() => {
            Error::not_json(format!("Body is not valid JSON: {j}"))
        }
        _ if msg.contains("missing field") => Error::missing_param(msg),
        DeserializationError::Ident(_) => Error::invalid_param(msg),
        DeserializationError::Query(_) | DeserializationError::Header(_) => Error::invalid_param(msg),
        _ => Error::bad_json(msg),
    }
}

/// Checks that a non-empty body is a JSON object: unparseable is M_NOT_JSON, any other JSON
/// value M_BAD_JSON (every request body in the Matrix APIs is an object).
pub fn check_json_object(body: &[u8]) -> Result<(), Error> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Err(e) => Err(Error::not_json(format!("Body is not valid JSON: {e}"))),
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(Error::bad_json("Body must be a JSON object")),
    }
}

/// Endpoints a guest may call: the lists of the spec's "Guest access" module (client behaviour),
/// plus logging out. Matched on the method and the route after the version prefix.
fn guest_allowed(method: &Method, route: &str) -> bool {
    const ALLOWED: &[(&str, &str)] = &[
        ("GET", "/rooms/{room_id}/state"),
        ("GET", "/rooms/{room_id}/context/{event_id}"),
        ("GET", "/rooms/{room_id}/event/{event_id}"),
        ("GET", "/rooms/{room_id}/state/{event_type}/{state_key}"),
        ("GET", "/rooms/{room_id}/state/{event_type}"),
        ("GET", "/rooms/{room_id}/messages"),
        ("GET", "/rooms/{room_id}/members"),
        ("GET", "/rooms/{room_id}/initialSync"),
        ("GET", "/sync"),
        ("GET", "/events"),
        ("GET", "/media/download/{server_name}/{media_id}"),
        ("GET", "/media/download/{server_name}/{media_id}/{filename}"),
        ("GET", "/media/thumbnail/{server_name}/{media_id}"),
        ("POST", "/rooms/{room_id}/join"),
        // Not in the spec's list, but the same join by another path; Synapse allows it too.
        ("POST", "/join/{room_id_or_alias}"),
        ("POST", "/rooms/{room_id}/leave"),
        ("PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}"),
        ("PUT", "/rooms/{room_id}/state/{event_type}/{state_key}"),
        ("PUT", "/rooms/{room_id}/state/{event_type}"),
        ("PUT", "/sendToDevice/{event_type}/{txn_id}"),
        // The display name only: the handlers refuse guests other fields.
        ("PUT", "/profile/{user_id}/{field}"),
        ("DELETE", "/profile/{user_id}/{field}"),
        ("GET", "/devices"),
        ("GET", "/devices/{device_id}"),
        ("PUT", "/devices/{device_id}"),
        ("GET", "/account/whoami"),
        ("POST", "/keys/upload"),
        ("POST", "/keys/query"),
        ("POST", "/keys/claim"),
        ("POST", "/logout"),
        // Not in the spec's list, but Synapse lets guests call too (unless turn_allow_guests
        // is off, which the handler checks).
        ("GET", "/voip/turnServer"),
        // Also Synapse's, and what clients ask at start or need for a room they joined.
        // (matrix-sdk asks /versions with its token before anything else.)
        ("GET", "/versions"),
        ("GET", "/capabilities"),
        ("GET", "/profile/{user_id}"),
        ("GET", "/profile/{user_id}/{field}"),
        ("GET", "/publicRooms"),
        ("POST", "/publicRooms"),
        ("GET", "/keys/changes"),
        ("GET", "/rooms/{room_id}/relations/{event_id}"),
        ("GET", "/rooms/{room_id}/relations/{event_id}/{rel_type}"),
        ("GET", "/rooms/{room_id}/relations/{event_id}/{rel_type}/{event_type}"),
    ];
    // A state path with an empty state key is routed with a trailing `/`: the same endpoint.
    // `/_matrix/client/versions` has no version segment.
    let suffix =
        if route == "/_matrix/client/versions" { "versions" } else { route_suffix(route).trim_end_matches('/') };
    ALLOWED.iter().any(|(m, p)| m == method && p.strip_prefix('/') == Some(suffix))
}

/// Bodies that ruma's deserializers are known to panic on, refused with the error the spec
/// means. ruma-client-api 0.24's `LoginInfo` indexes its JSON map with `["type"]`, which panics
/// when the key is missing (reported upstream).
fn refuse_known_panics<T: 'static>(body: &[u8]) -> Result<(), Error> {
    use std::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<ruma::api::client::session::login::v3::Request>() {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| Error::not_json(e.to_string()))?;
        if value.get("type").is_none() {
            return Err(Error::missing_param("Missing `type`: the login type, e.g. m.login.password"));
        }
    }
    Ok(())
}

/// Where ruma's request type requires a field the spec leaves optional, the body gets the
/// default the spec (or Synapse, where the spec is silent) gives it before ruma reads it.
fn fill_spec_defaults<T: 'static>(body: Bytes) -> Bytes {
    use std::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<ruma::api::client::typing::create_typing_event::v3::Request>() {
        // `timeout` is optional even when typing (spec: only `typing` is required); Synapse
        // takes 30 seconds.
        if let Ok(serde_json::Value::Object(mut o)) = serde_json::from_slice::<serde_json::Value>(&body)
            && o.get("typing") == Some(&serde_json::Value::Bool(true))
            && !o.contains_key("timeout")
        {
            o.insert("timeout".to_owned(), serde_json::Value::from(30_000));
            return Bytes::from(serde_json::Value::Object(o).to_string());
        }
    }
    body
}

/// Refuses a guest on an endpoint outside the spec's guest list.
fn check_guest(session: &Session, parts: &Parts) -> Result<(), Error> {
    let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("");
    if session.is_guest && !guest_allowed(&parts.method, route) {
        return Err(Error::matrix(
            StatusCode::FORBIDDEN,
            ErrorKind::GuestAccessForbidden,
            "Guest accounts cannot use this endpoint; register a full account",
        ));
    }
    Ok(())
}

/// The authenticated user, for handlers served without a ruma request type (media streams,
/// endpoints whose ruma type disagrees with the spec). Put it first among a handler's
/// arguments so authentication comes before the path and query are looked at, as with `Ruma`.
pub struct Authed(pub Session);

impl FromRequestParts<AppState> for Authed {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let session = authenticate(state, parts, AuthKind::Required).await?.ok_or_else(Error::missing_token)?;
        check_guest(&session, parts)?;
        Ok(Authed(session))
    }
}

/// The user when the request carries an access token (which must then be valid), and the
/// client's address, for endpoints served without a ruma type that anyone may call.
pub struct MaybeAuthed(pub Option<Session>, pub Option<IpAddr>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let session = authenticate(state, parts, AuthKind::Optional).await?;
        if let Some(s) = &session {
            check_guest(s, parts)?;
        }
        Ok(MaybeAuthed(session, client_ip(parts)))
    }
}

impl<T> FromRequest<AppState> for Ruma<T>
where
    T: IncomingRequest + Send + 'static,
    T::Authentication: AuthRequirement,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let (mut parts, body) = req.into_parts();
        // Who asks comes first: an anonymous request learns nothing about its parameters.
        let session = authenticate(state, &parts, <T::Authentication as AuthRequirement>::KIND).await?;
        if let Some(s) = &session {
            check_guest(s, &parts)?;
        }
        let mut path_args: Vec<String> = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| Error::invalid_param(format!("Invalid path parameter: {e}")))?
            .iter()
            .map(|(_, v)| v.to_owned())
            .collect();
        // Routes registered without a trailing empty state key (see `http::route`).
        let expected =
            T::PATH_BUILDER.all_paths().next().map_or(0, |p| p.split('/').filter(|s| s.starts_with('{')).count());
        path_args.resize(expected.max(path_args.len()), String::new());

        let limit = state.config.max_request_size.0 as usize;
        let mut bytes = read_body(&parts, body, limit).await?;
        // A federation request's signature covers its body as sent.
        let origin = match <T::Authentication as AuthRequirement>::KIND {
            AuthKind::Federation => Some(authenticate_server(state, &parts, &bytes).await?),
            _ => None,
        };
        let federation_slot = match &origin {
            Some(o) => Some(state.federation.limits.admit(o).await?),
            None => None,
        };
        if parts.method == Method::GET || parts.method == Method::HEAD {
            bytes = Bytes::new();
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            bytes = Bytes::from_static(b"{}");
        } else {
            check_json_object(&bytes)?;
        }

        let ip = client_ip(&parts);
        let raw_body = bytes.clone();
        refuse_known_panics::<T>(&raw_body)?;
        let bytes = fill_spec_defaults::<T>(bytes);
        let http_req = http::Request::from_parts(parts, bytes);
        // A deserializer that panics on some input (see `refuse_known_panics`) must cost the
        // client a 400, not the server a 500.
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::try_from_http_request(http_req, &path_args)));
        let body = match parsed {
            Ok(parsed) => parsed.map_err(request_error)?,
            Err(_) => {
                tracing::warn!("a request body made the request parser panic");
                return Err(Error::bad_json("The request body could not be read"));
            }
        };
        Ok(Ruma { body, session, ip, raw_body, origin, federation_slot })
    }
}

/// A typed ruma response.
pub struct RumaResponse<R>(pub R);

impl<R: OutgoingResponse> IntoResponse for RumaResponse<R> {
    fn into_response(self) -> Response {
        match self.0.try_into_http_response::<bytes::BytesMut>() {
            Ok(resp) => resp.map(|b| Body::from(b.freeze())).into_response(),
            Err(e) => Error::internal(format!("serialising response: {e}")).into_response(),
        }
    }
}

impl<R> From<R> for RumaResponse<R> {
    fn from(r: R) -> Self {
        RumaResponse(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_errors() {
        assert_eq!(check_json_object(b"{not json").unwrap_err().errcode(), "M_NOT_JSON");
        assert_eq!(check_json_object(b"[1,2]").unwrap_err().errcode(), "M_BAD_JSON");
        assert!(check_json_object(b" {\"a\": 1} ").is_ok());
    }

    #[test]
    fn guests_reach_only_the_spec_list() {
        assert!(guest_allowed(&Method::GET, "/_matrix/client/v3/sync"));
        assert!(guest_allowed(&Method::GET, "/_matrix/client/r0/account/whoami"));
        assert!(guest_allowed(&Method::PUT, "/_matrix/client/v3/devices/{device_id}"));
        assert!(!guest_allowed(&Method::DELETE, "/_matrix/client/v3/devices/{device_id}"));
        assert!(!guest_allowed(&Method::POST, "/_matrix/client/v1/login/get_token"));
        assert!(!guest_allowed(&Method::POST, "/_matrix/client/v3/account/password"));
        assert!(!guest_allowed(&Method::POST, "/_matrix/client/v3/logout/all"));
    }

    #[test]
    fn query_token_is_decoded() {
        let req = http::Request::builder().uri("/x?a=1&access_token=ab%2Bc").body(()).unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(access_token(&parts).unwrap().as_deref(), Some("ab+c"));
    }
}
