//! Server-side search (spec: "Server Side Search") over the rooms the user may read, with SQLite
//! FTS5, and history visibility applied to every result.

use axum::{Json, extract::State};
use ruma::api::client::search::search_events::{self, v3::OrderBy};
use serde_json::{Value, json};

use super::room::view;
use crate::{
    error::{Error, Result},
    http::ruma::Ruma,
    service::{AppState, rooms::queries::fts_query},
};

const PAGE: i64 = 20;

/// POST /_matrix/client/v3/search
pub async fn search_events(State(s): State<AppState>, req: Ruma<search_events::v3::Request>) -> Result<Json<Value>> {
    let user = &req.session().user_id;
    let Some(criteria) = &req.body.search_categories.room_events else {
        return Ok(Json(json!({ "search_categories": {} })));
    };
    let query =
        fts_query(&criteria.search_term).ok_or_else(|| Error::invalid_param("search_term must not be empty"))?;
    let offset: i64 = match req.body.next_batch.as_deref() {
        Some(t) => t.parse().map_err(|_| Error::invalid_param("Invalid next_batch"))?,
        None => 0,
    };
    let keys: Vec<String> = match &criteria.keys {
        Some(k) => k.iter().map(|k| k.as_str().to_owned()).collect(),
        None => vec!["content.body".into(), "content.name".into(), "content.topic".into()],
    };
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Rooms the user has (or had) a membership in; visibility decides per event below.
    let mut rooms: Vec<String> = s.rooms.memberships_of(user).await?.iter().map(|m| m.room_id.clone()).collect();
    if let Some(only) = &criteria.filter.rooms {
        rooms.retain(|r| only.iter().any(|o| o.as_str() == r));
    }
    let by_rank = !matches!(criteria.order_by, Some(OrderBy::Recent));
    // One row more than a page tells whether there is a next page.
    let hits = s.rooms.search_events(&query, &rooms, &keys, by_rank, (offset, PAGE + 1)).await?;
    let more = hits.len() as i64 > PAGE;
    let mut results = Vec::new();
    let mut checks = std::collections::HashMap::new();
    for (event_id, room_id, rank) in hits.into_iter().take(PAGE as usize) {
        let Some(ev) = s.rooms.event(&event_id).await? else { continue };
        if !checks.contains_key(&room_id) {
            checks.insert(room_id.clone(), s.rooms.visibility(user, &room_id).await?);
        }
        let check = checks.get_mut(&room_id).expect("inserted above");
        if !check.allows(&ev.row).await? {
            continue;
        }
        let mut v = view(&ev);
        check.annotate(&ev.row, &mut v).await?;
        results.push(json!({ "rank": -rank, "result": v, "context": {} }));
    }
    let mut body = json!({
        "count": results.len(),
        "highlights": criteria.search_term.split_whitespace().collect::<Vec<_>>(),
        "results": results,
    });
    if more {
        body["next_batch"] = json!((offset + PAGE).to_string());
    }
    Ok(Json(json!({ "search_categories": { "room_events": body } })))
}
