//! Plain JSON bodies and admin authentication for endpoints ruma has no types for (Synapse's
//! admin API), with the same Matrix errors as the ruma extractor.

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::{Method, StatusCode, request::Parts};
use serde::de::DeserializeOwned;

use super::ruma::{AuthKind, authenticate, check_json_object, read_body};
use crate::{error::Error, service::AppState};

/// A JSON object body deserialised into `T`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts, body, state.config.max_request_size.0 as usize).await?;
        let bytes: &[u8] = if parts.method == Method::GET || bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            check_json_object(&bytes)?;
            &bytes
        };
        serde_json::from_slice(bytes).map(Json).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("missing field") { Error::missing_param(msg) } else { Error::bad_json(msg) }
        })
    }
}

/// An authenticated server admin and their session (the extractor refuses everyone else).
pub struct Admin(pub crate::service::accounts::Session);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let session = authenticate(state, parts, AuthKind::Required).await?.ok_or_else(Error::missing_token)?;
        if !session.is_admin {
            return Err(Error::matrix(
                StatusCode::FORBIDDEN,
                ::ruma::api::error::ErrorKind::Forbidden,
                "You are not a server admin",
            ));
        }
        Ok(Admin(session))
    }
}
