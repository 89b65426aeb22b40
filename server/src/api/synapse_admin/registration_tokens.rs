//! /_synapse/admin/v1/registration_tokens: invite codes, managed as in Synapse's admin API.

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::Result,
    http::json::{Admin, Json},
    service::{
        AppState,
        invites::{NewToken, RegistrationToken},
    },
};

#[derive(Deserialize)]
pub struct ListQuery {
    valid: Option<bool>,
}

/// GET /_synapse/admin/v1/registration_tokens[?valid=true|false]
pub async fn list(State(s): State<AppState>, _: Admin, Query(q): Query<ListQuery>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(json!({ "registration_tokens": s.invites.tokens(q.valid).await? })))
}

/// GET /_synapse/admin/v1/registration_tokens/{token}
pub async fn get_one(
    State(s): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
) -> Result<AxumJson<RegistrationToken>> {
    Ok(AxumJson(s.invites.token(&token).await?))
}

/// A JSON field that may be absent, null, or a value (PUT distinguishes "leave" from "clear").
#[derive(Default)]
pub enum Field<T> {
    #[default]
    Absent,
    Set(Option<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Field::Set)
    }
}

impl<T> Field<T> {
    fn into_option(self) -> Option<Option<T>> {
        match self {
            Field::Absent => None,
            Field::Set(v) => Some(v),
        }
    }
}

#[derive(Deserialize)]
pub struct CreateBody {
    token: Option<String>,
    #[serde(default)]
    uses_allowed: Field<i64>,
    #[serde(default)]
    expiry_time: Field<i64>,
    length: Option<usize>,
}

/// POST /_synapse/admin/v1/registration_tokens/new
pub async fn create(
    State(s): State<AppState>,
    _: Admin,
    Json(body): Json<CreateBody>,
) -> Result<AxumJson<RegistrationToken>> {
    let new = NewToken {
        token: body.token,
        length: body.length,
        uses_allowed: body.uses_allowed.into_option().flatten(),
        expiry_time: body.expiry_time.into_option().flatten(),
    };
    Ok(AxumJson(s.invites.create_token(new).await?))
}

#[derive(Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    uses_allowed: Field<i64>,
    #[serde(default)]
    expiry_time: Field<i64>,
}

/// PUT /_synapse/admin/v1/registration_tokens/{token}
pub async fn update(
    State(s): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<AxumJson<RegistrationToken>> {
    let t = s.invites.update_token(&token, body.uses_allowed.into_option(), body.expiry_time.into_option()).await?;
    Ok(AxumJson(t))
}

/// DELETE /_synapse/admin/v1/registration_tokens/{token}
pub async fn delete(State(s): State<AppState>, _: Admin, Path(token): Path<String>) -> Result<AxumJson<Value>> {
    s.invites.delete_token(&token).await?;
    Ok(AxumJson(json!({})))
}
