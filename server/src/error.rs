//! The one error type of the server and the single place that renders it as a Matrix error body.
//!
//! Handlers and services return `Result<T, Error>`; they never log and return. Internal errors are
//! logged once, here, when they are turned into a response (500 M_UNKNOWN with a generic message),
//! so a client never sees SQL or file paths.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use ruma::api::{
    OutgoingResponse,
    client::uiaa::{UiaaInfo, UiaaResponse},
    error::{ErrorBody, ErrorKind, LimitExceededErrorData, RetryAfter, StandardErrorBody, UnknownTokenErrorData},
};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure the client caused or must know about, with its Matrix error code.
    #[error("{status} {}: {message}", kind.errcode())]
    Matrix { status: StatusCode, kind: ErrorKind, message: String },

    /// User-Interactive Authentication: more stages are needed (401 with the flows).
    #[error("user-interactive authentication required")]
    Uiaa(Box<UiaaInfo>),

    /// A bug or an environment failure (database, disk). Rendered as 500 M_UNKNOWN.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn matrix(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Matrix { status, kind, message: message.into() }
    }
    /// An error code outside the spec's list that Synapse sends and clients know
    /// (`M_PASSWORD_TOO_SHORT` and its friends).
    pub fn custom(status: StatusCode, errcode: &str, message: impl Into<String>) -> Self {
        let kind = serde_json::from_value(serde_json::json!({ "errcode": errcode })).unwrap_or(ErrorKind::Unknown);
        Self::matrix(status, kind, message)
    }
    /// `M_INCOMPATIBLE_ROOM_VERSION`, naming the room's version (federation: a server that
    /// cannot take part in a room of that version).
    pub fn incompatible_room_version(version: ruma::RoomVersionId, message: impl Into<String>) -> Self {
        let data = ruma::api::error::IncompatibleRoomVersionErrorData::new(version);
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::IncompatibleRoomVersion(data), message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::FORBIDDEN, ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::BadJson, message)
    }
    pub fn not_json(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::NotJson, message)
    }
    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::MissingParam, message)
    }
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
    }
    pub fn unrecognized(status: StatusCode, message: impl Into<String>) -> Self {
        Self::matrix(status, ErrorKind::Unrecognized, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::PAYLOAD_TOO_LARGE, ErrorKind::TooLarge, message)
    }
    pub fn missing_token() -> Self {
        Self::matrix(
            StatusCode::UNAUTHORIZED,
            ErrorKind::MissingToken,
            "Missing access token: send it in an 'Authorization: Bearer' header",
        )
    }
    pub fn unknown_token(soft_logout: bool) -> Self {
        let mut data = UnknownTokenErrorData::new();
        data.soft_logout = soft_logout;
        let message = if soft_logout {
            "Access token has expired: refresh it or log in again"
        } else {
            "Unrecognised access token"
        };
        Self::matrix(StatusCode::UNAUTHORIZED, ErrorKind::UnknownToken(data), message)
    }
    pub fn limit_exceeded(retry_after: Duration) -> Self {
        let mut data = LimitExceededErrorData::new();
        data.retry_after = Some(RetryAfter::Delay(retry_after));
        Self::matrix(StatusCode::TOO_MANY_REQUESTS, ErrorKind::LimitExceeded(data), "Too many requests")
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"))
    }

    /// The Matrix error code, for tests and logs.
    /// What went wrong, in words for a person (the command line), without status or code.
    pub fn message(&self) -> String {
        match self {
            Error::Matrix { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn errcode(&self) -> String {
        match self {
            Error::Matrix { kind, .. } => kind.errcode().to_string(),
            Error::Uiaa(_) => "UIAA".to_owned(),
            Error::Internal(_) => "M_UNKNOWN".to_owned(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let rendered = match self {
            Error::Matrix { status, kind, message } => {
                let body = ErrorBody::Standard(StandardErrorBody::new(kind, message));
                body.into_error(status).try_into_http_response::<Vec<u8>>()
            }
            Error::Uiaa(info) => UiaaResponse::AuthResponse(*info).try_into_http_response::<Vec<u8>>(),
            Error::Internal(e) => {
                tracing::error!(error = ?e, "internal error while serving request");
                let body = ErrorBody::Standard(StandardErrorBody::new(
                    ErrorKind::Unknown,
                    "Internal server error; the server log has the details".to_owned(),
                ));
                body.into_error(StatusCode::INTERNAL_SERVER_ERROR).try_into_http_response::<Vec<u8>>()
            }
        };
        match rendered {
            Ok(resp) => resp.map(axum::body::Body::from).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialise an error response");
                (StatusCode::INTERNAL_SERVER_ERROR, "{\"errcode\":\"M_UNKNOWN\",\"error\":\"Internal server error\"}")
                    .into_response()
            }
        }
    }
}
