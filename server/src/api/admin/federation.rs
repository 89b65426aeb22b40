//! /_hearth/admin/v1/federation: the other servers Hearth sends to, for the dashboard.

use axum::{
    Json,
    extract::{Query, State},
};
use serde_json::{Value, json};

use crate::{error::Result, service::AppState};

/// GET: each destination with the last event it accepted, whether it is backing off (and until
/// when), its last error, its last success and how many events wait for it.
pub async fn destinations(State(s): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!({ "destinations": s.federation.sender.destinations().await? })))
}

#[derive(serde::Deserialize)]
pub struct TestQuery {
    server_name: String,
}

/// GET `?server_name=`: what another server would find on the way to that server (the
/// dashboard's federation tester), step by step with plain-language causes.
pub async fn test(State(s): State<AppState>, Query(q): Query<TestQuery>) -> Result<Json<Value>> {
    Ok(Json(json!(s.federation.test_server(&q.server_name).await)))
}
