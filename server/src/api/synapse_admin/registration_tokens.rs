//! /_synapse/admin/v1/registration_tokens: invite codes, managed as in Synapse's admin API.

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::json::{Admin, Json},
    service::{AppState, tokens},
    storage::{now_ms, registration_tokens as store, registration_tokens::RegistrationToken},
};

#[derive(Deserialize)]
pub struct ListQuery {
    valid: Option<bool>,
}

/// GET /_synapse/admin/v1/registration_tokens[?valid=true|false]
pub async fn list(State(s): State<AppState>, _: Admin, Query(q): Query<ListQuery>) -> Result<AxumJson<Value>> {
    let now = now_ms();
    let tokens: Vec<RegistrationToken> =
        store::list(&s.db.read).await?.into_iter().filter(|t| q.valid.is_none_or(|v| t.is_valid(now) == v)).collect();
    Ok(AxumJson(json!({ "registration_tokens": tokens })))
}

/// GET /_synapse/admin/v1/registration_tokens/{token}
pub async fn get_one(
    State(s): State<AppState>,
    _: Admin,
    Path(token): Path<String>,
) -> Result<AxumJson<RegistrationToken>> {
    store::get(&s.db.read, &token).await?.map(AxumJson).ok_or_else(|| Error::not_found("No such registration token"))
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

fn check_uses(v: Option<i64>) -> Result<()> {
    if v.is_some_and(|n| n < 0) {
        return Err(Error::invalid_param("uses_allowed must be a non-negative integer or null"));
    }
    Ok(())
}

fn check_expiry(v: Option<i64>) -> Result<()> {
    if v.is_some_and(|t| t < now_ms()) {
        return Err(Error::invalid_param("expiry_time must not be in the past"));
    }
    Ok(())
}

/// POST /_synapse/admin/v1/registration_tokens/new
pub async fn create(
    State(s): State<AppState>,
    _: Admin,
    Json(body): Json<CreateBody>,
) -> Result<AxumJson<RegistrationToken>> {
    let uses = body.uses_allowed.into_option().flatten();
    let expiry = body.expiry_time.into_option().flatten();
    check_uses(uses)?;
    check_expiry(expiry)?;
    let token = match body.token {
        Some(t) => {
            if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)) {
                return Err(Error::invalid_param("token must be 1 to 64 characters from A-Z, a-z, 0-9 and . _ ~ -"));
            }
            if !store::insert(&s.db.write, &t, uses, expiry).await? {
                return Err(Error::invalid_param(format!("Token already exists: {t}")));
            }
            t
        }
        None => {
            let length = body.length.unwrap_or(16);
            if !(1..=64).contains(&length) {
                return Err(Error::invalid_param("length must be between 1 and 64"));
            }
            loop {
                let t = tokens::random_alphanumeric(length);
                if store::insert(&s.db.write, &t, uses, expiry).await? {
                    break t;
                }
            }
        }
    };
    store::get(&s.db.read, &token).await?.map(AxumJson).ok_or_else(|| Error::internal("token vanished after insert"))
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
    let uses = body.uses_allowed.into_option();
    let expiry = body.expiry_time.into_option();
    check_uses(uses.flatten())?;
    check_expiry(expiry.flatten())?;
    if !store::update(&s.db.write, &token, uses, expiry).await? {
        return Err(Error::not_found("No such registration token"));
    }
    store::get(&s.db.read, &token).await?.map(AxumJson).ok_or_else(|| Error::not_found("No such registration token"))
}

/// DELETE /_synapse/admin/v1/registration_tokens/{token}
pub async fn delete(State(s): State<AppState>, _: Admin, Path(token): Path<String>) -> Result<AxumJson<Value>> {
    if !store::delete(&s.db.write, &token).await? {
        return Err(Error::not_found("No such registration token"));
    }
    Ok(AxumJson(json!({})))
}
