//! GET /sync and the filters it uses.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use ruma::api::client::{
    filter::{FilterDefinition, create_filter, get_filter},
    sync::sync_events,
};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    matrix::filter::SyncFilter,
    service::{
        AppState,
        sync::{SyncBody, SyncParams, SyncToken},
    },
};

/// GET /_matrix/client/v3/sync
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3sync>
pub async fn sync_events(State(s): State<AppState>, req: Ruma<sync_events::v3::Request>) -> Result<Response> {
    let session = req.session();
    let b = &req.body;
    let filter: Option<FilterDefinition> = match &b.filter {
        Some(sync_events::v3::Filter::FilterDefinition(f)) => Some(f.clone()),
        // Inline JSON that ruma could not read as a filter (it then takes it for an ID).
        Some(sync_events::v3::Filter::FilterId(id)) if id.trim_start().starts_with('{') => {
            return Err(Error::not_json("The filter is not a valid filter JSON object"));
        }
        Some(sync_events::v3::Filter::FilterId(id)) => Some(load_filter(&s, &session.user_id, id).await?),
        _ => None,
    };
    let filter = match filter {
        Some(f) => SyncFilter::from_json(&serde_json::to_value(&f).map_err(Error::internal)?),
        None => SyncFilter::default(),
    };
    // While this request is open the user counts as syncing (presence goes offline only after
    // they stop).
    let _syncing = s.ephemeral.syncing(&session.user_id);
    // `set_presence` (spec: GET /sync): syncing says the user is online unless told otherwise.
    // Over `rc_presence` the change is skipped and the sync goes on, as in Synapse.
    match &b.set_presence {
        ruma::presence::PresenceState::Offline => {}
        p if s.ephemeral.presence(&session.user_id).0 != *p
            && s.limits.user(&s.limits.presence, &session.user_id).is_err() => {}
        p => s.ephemeral.set_presence(&session.user_id, p.clone(), s.ephemeral.presence(&session.user_id).1),
    }
    let params = SyncParams {
        since: b.since.as_deref().map(SyncToken::parse).transpose()?,
        timeout: b.timeout.unwrap_or(Duration::ZERO),
        full_state: b.full_state,
        filter,
        use_state_after: b.use_state_after,
    };
    let body: SyncBody = s.sync.sync(&session.user_id, session.device_id.as_str(), &params).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_json()?).into_response())
}

async fn load_filter(s: &AppState, user: &ruma::UserId, id: &str) -> Result<FilterDefinition> {
    let n: i64 = id.parse().map_err(|_| Error::invalid_param("Unknown filter ID"))?;
    let text = s.accounts.filter(user, n).await?.ok_or_else(|| Error::not_found("Unknown filter ID"))?;
    serde_json::from_str(&text).map_err(Error::internal)
}

/// POST /_matrix/client/v3/user/{userId}/filter
pub async fn create_filter(
    State(s): State<AppState>,
    req: Ruma<create_filter::v3::Request>,
) -> Result<RumaResponse<create_filter::v3::Response>> {
    let user = &req.session().user_id;
    if *user != req.body.user_id {
        return Err(Error::forbidden("You can only create filters for yourself"));
    }
    let text = serde_json::to_string(&req.body.filter).map_err(Error::internal)?;
    let id = s.accounts.create_filter(user, &text).await?;
    Ok(RumaResponse(create_filter::v3::Response::new(id.to_string())))
}

/// GET /_matrix/client/v3/user/{userId}/filter/{filterId}
pub async fn get_filter(
    State(s): State<AppState>,
    req: Ruma<get_filter::v3::Request>,
) -> Result<RumaResponse<get_filter::v3::Response>> {
    let user = &req.session().user_id;
    if *user != req.body.user_id {
        return Err(Error::forbidden("You can only read your own filters"));
    }
    let f = load_filter(&s, user, &req.body.filter_id).await?;
    Ok(RumaResponse(get_filter::v3::Response::new(f)))
}

/// POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync (MSC4186, the unstable wire
/// format matrix-rust-sdk speaks)
pub async fn sliding_sync(
    State(s): State<AppState>,
    req: Ruma<sync_events::v5::Request>,
) -> Result<Json<crate::service::sliding_sync::Answer>> {
    use crate::service::sliding_sync::{Extensions, Filters, ListRequest, Request, RoomConfig, Scope};
    let session = req.session();
    let b = &req.body;
    let config = |required: &[(ruma::events::StateEventType, String)], limit: ruma::UInt| RoomConfig {
        timeline_limit: u64::from(limit),
        required_state: required.iter().map(|(t, k)| (t.to_string(), k.clone())).collect(),
    };
    // `spaces`, `tags` and `not_tags` (in MSC3575 and Synapse; not in ruma's request type) are
    // read from the body as sent.
    let raw: Value = serde_json::from_slice(&req.raw_body).unwrap_or_default();
    let mut lists = std::collections::BTreeMap::new();
    for (name, l) in &b.lists {
        let f = l.filters.clone().unwrap_or_default();
        let types =
            |v: &[ruma::directory::RoomTypeFilter]| v.iter().map(|t| t.as_str().map(str::to_owned)).collect::<Vec<_>>();
        let strings = |key: &str| -> Result<Option<Vec<String>>> {
            let bad = || crate::error::Error::bad_json(format!("lists.{name}.filters.{key} must be a list of strings"));
            match &raw["lists"][name.as_str()]["filters"][key] {
                Value::Null => Ok(None),
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                _ => Err(bad()),
            }
        };
        let filters = Filters {
            is_dm: f.is_dm,
            is_encrypted: f.is_encrypted,
            is_invite: f.is_invite,
            room_types: (!f.room_types.is_empty()).then(|| types(&f.room_types)),
            not_room_types: types(&f.not_room_types),
            // An empty list filters nothing, as for `room_types`.
            spaces: strings("spaces")?.filter(|s| !s.is_empty()),
            tags: strings("tags")?.filter(|t| !t.is_empty()),
            not_tags: strings("not_tags")?.unwrap_or_default(),
        };
        let ranges = l.ranges.iter().map(|(a, b)| (u64::from(*a), u64::from(*b))).collect();
        lists.insert(
            name.clone(),
            ListRequest {
                ranges,
                config: config(&l.room_details.required_state, l.room_details.timeline_limit),
                filters,
            },
        );
    }
    let subscriptions = b
        .room_subscriptions
        .iter()
        .map(|(room, c)| (room.to_string(), config(&c.required_state, c.timeline_limit)))
        .collect();
    let scope =
        |lists: &Option<Vec<String>>, rooms: &Option<Vec<sync_events::v5::request::ExtensionRoomConfig>>| Scope {
            lists: lists.clone(),
            rooms: rooms.as_ref().map(|rs| {
                rs.iter()
                    .map(|r| match r {
                        sync_events::v5::request::ExtensionRoomConfig::Room(id) => id.to_string(),
                        _ => "*".to_owned(),
                    })
                    .collect()
            }),
        };
    let e = &b.extensions;
    let on = |enabled: Option<bool>| enabled == Some(true);
    let extensions = Extensions {
        to_device: on(e.to_device.enabled).then(|| e.to_device.since.clone()),
        e2ee: on(e.e2ee.enabled),
        account_data: on(e.account_data.enabled).then(|| scope(&e.account_data.lists, &e.account_data.rooms)),
        receipts: on(e.receipts.enabled).then(|| scope(&e.receipts.lists, &e.receipts.rooms)),
        typing: on(e.typing.enabled).then(|| scope(&e.typing.lists, &e.typing.rooms)),
    };
    let request = Request {
        pos: b.pos.clone(),
        conn_id: b.conn_id.clone().unwrap_or_default(),
        timeout: b.timeout.unwrap_or(Duration::ZERO),
        lists,
        subscriptions,
        extensions,
    };
    let _syncing = s.ephemeral.syncing(&session.user_id);
    Ok(Json(s.sliding_sync.sync(&session.user_id, session.device_id.as_str(), &request).await?))
}
