//! Push rules (spec: "Push Rules"): the spec's default ruleset from ruma, with the user's changes,
//! kept as the `m.push_rules` account data event so every device sees them through /sync.

use axum::extract::{Path, State};
use ruma::{
    UserId,
    api::client::push::{
        delete_pushrule, get_pushrule, get_pushrule_actions, get_pushrule_enabled, get_pushrules_all,
        get_pushrules_global_scope, set_pushrule, set_pushrule_actions, set_pushrule_enabled,
    },
    push::Ruleset,
};
use serde_json::json;

use crate::{
    error::{Error, Result},
    http::ruma::{Authed, Ruma, RumaResponse},
    service::AppState,
};

/// The user's ruleset: stored, or the server default.
pub async fn ruleset(s: &AppState, user: &UserId) -> Result<Ruleset> {
    match s.account_data.get(user, None, "m.push_rules").await? {
        Some(v) => serde_json::from_value(v["global"].clone()).map_err(Error::internal),
        None => Ok(Ruleset::server_default(user)),
    }
}

async fn save(s: &AppState, user: &UserId, rules: &Ruleset) -> Result<()> {
    s.account_data.put(user, None, "m.push_rules", &json!({ "global": rules })).await
}

fn not_found() -> Error {
    Error::not_found("No such push rule")
}

/// GET /_matrix/client/v3/pushrules/
pub async fn get_pushrules_all(
    State(s): State<AppState>,
    req: Ruma<get_pushrules_all::v3::Request>,
) -> Result<RumaResponse<get_pushrules_all::v3::Response>> {
    Ok(RumaResponse(get_pushrules_all::v3::Response::new(ruleset(&s, &req.session().user_id).await?)))
}

/// GET /_matrix/client/v3/pushrules/global/
pub async fn get_pushrules_global_scope(
    State(s): State<AppState>,
    req: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<RumaResponse<get_pushrules_global_scope::v3::Response>> {
    Ok(RumaResponse(get_pushrules_global_scope::v3::Response::new(ruleset(&s, &req.session().user_id).await?)))
}

/// GET /_matrix/client/v3/pushrules/global/{kind}/: the rules of one kind, in order (Synapse
/// serves this; clients such as Element read single kinds this way).
pub async fn get_pushrules_kind(
    Authed(session): Authed,
    State(s): State<AppState>,
    Path(kind): Path<String>,
) -> Result<axum::Json<serde_json::Value>> {
    let rules = serde_json::to_value(ruleset(&s, &session.user_id).await?).map_err(Error::internal)?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(unrecognized_path());
    }
    // ruma leaves empty kinds out of the ruleset's JSON; the listing is then empty.
    Ok(axum::Json(rules.get(&kind).cloned().unwrap_or_else(|| json!([]))))
}

/// GET of /pushrules, /pushrules/global or /pushrules/global/{kind} without the trailing slash:
/// no listing lives there (Synapse answers the same).
pub async fn partial_path(Authed(_): Authed) -> Result<()> {
    Err(unrecognized_path())
}

const KINDS: [&str; 5] = ["override", "content", "room", "sender", "underride"];

fn unrecognized_path() -> Error {
    Error::unrecognized(
        http::StatusCode::BAD_REQUEST,
        "Not a push rules listing: the listings are /pushrules/, /pushrules/global/ and /pushrules/global/{kind}/",
    )
}

/// GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
pub async fn get_pushrule(
    State(s): State<AppState>,
    req: Ruma<get_pushrule::v3::Request>,
) -> Result<RumaResponse<get_pushrule::v3::Response>> {
    let rules = ruleset(&s, &req.session().user_id).await?;
    let rule = rules.get(req.body.kind.clone(), &req.body.rule_id).ok_or_else(not_found)?;
    Ok(RumaResponse(get_pushrule::v3::Response::new(rule.into())))
}

/// PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
pub async fn set_pushrule(
    State(s): State<AppState>,
    req: Ruma<set_pushrule::v3::Request>,
) -> Result<RumaResponse<set_pushrule::v3::Response>> {
    let user = &req.session().user_id;
    let b = &req.body;
    let rule_id = b.rule.rule_id();
    // A rule ID is one path segment; the server's own rules start with a dot.
    if rule_id.contains(['/', '\\']) {
        return Err(Error::invalid_param("A push rule ID may not contain / or \\"));
    }
    if rule_id.starts_with('.') {
        return Err(Error::invalid_param("New push rule IDs may not start with '.'"));
    }
    let mut rules = ruleset(&s, user).await?;
    rules
        .insert(b.rule.clone(), b.after.as_deref(), b.before.as_deref())
        .map_err(|e| Error::invalid_param(format!("Cannot add this rule: {e}")))?;
    save(&s, user, &rules).await?;
    Ok(RumaResponse(set_pushrule::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
pub async fn delete_pushrule(
    State(s): State<AppState>,
    req: Ruma<delete_pushrule::v3::Request>,
) -> Result<RumaResponse<delete_pushrule::v3::Response>> {
    let user = &req.session().user_id;
    let mut rules = ruleset(&s, user).await?;
    rules.remove(req.body.kind.clone(), &req.body.rule_id).map_err(|e| match e {
        ruma::push::RemovePushRuleError::NotFound => not_found(),
        other => Error::invalid_param(other.to_string()),
    })?;
    save(&s, user, &rules).await?;
    Ok(RumaResponse(delete_pushrule::v3::Response::new()))
}

/// GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
pub async fn get_pushrule_enabled(
    State(s): State<AppState>,
    req: Ruma<get_pushrule_enabled::v3::Request>,
) -> Result<RumaResponse<get_pushrule_enabled::v3::Response>> {
    let rules = ruleset(&s, &req.session().user_id).await?;
    let rule = rules.get(req.body.kind.clone(), &req.body.rule_id).ok_or_else(not_found)?;
    Ok(RumaResponse(get_pushrule_enabled::v3::Response::new(rule.enabled())))
}

/// PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
pub async fn set_pushrule_enabled(
    State(s): State<AppState>,
    req: Ruma<set_pushrule_enabled::v3::Request>,
) -> Result<RumaResponse<set_pushrule_enabled::v3::Response>> {
    let user = &req.session().user_id;
    let mut rules = ruleset(&s, user).await?;
    rules.set_enabled(req.body.kind.clone(), &req.body.rule_id, req.body.enabled).map_err(|_| not_found())?;
    save(&s, user, &rules).await?;
    Ok(RumaResponse(set_pushrule_enabled::v3::Response::new()))
}

/// GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
pub async fn get_pushrule_actions(
    State(s): State<AppState>,
    req: Ruma<get_pushrule_actions::v3::Request>,
) -> Result<RumaResponse<get_pushrule_actions::v3::Response>> {
    let rules = ruleset(&s, &req.session().user_id).await?;
    let rule = rules.get(req.body.kind.clone(), &req.body.rule_id).ok_or_else(not_found)?;
    Ok(RumaResponse(get_pushrule_actions::v3::Response::new(rule.actions().to_vec())))
}

/// PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
pub async fn set_pushrule_actions(
    State(s): State<AppState>,
    req: Ruma<set_pushrule_actions::v3::Request>,
) -> Result<RumaResponse<set_pushrule_actions::v3::Response>> {
    let user = &req.session().user_id;
    let mut rules = ruleset(&s, user).await?;
    rules.set_actions(req.body.kind.clone(), &req.body.rule_id, req.body.actions.clone()).map_err(|_| not_found())?;
    save(&s, user, &rules).await?;
    Ok(RumaResponse(set_pushrule_actions::v3::Response::new()))
}

/// GET /_matrix/client/v3/notifications
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3notifications>
pub async fn get_notifications(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::push::get_notifications::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::push::get_notifications::v3::Response>> {
    use ruma::api::client::push::get_notifications::v3::{Notification, Response};
    let user = &req.session().user_id;
    let b = &req.body;
    let limit = b.limit.map(u64::from).unwrap_or(20).clamp(1, 100) as i64;
    let before = b.from.as_deref().map(crate::service::sync::parse_token).transpose()?.unwrap_or(i64::MAX);
    let only_highlight = b.only.as_deref() == Some("highlight");
    let rows = s.rooms.notifications(user, before, only_highlight, limit).await?;
    let next_token = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| crate::service::sync::token(r.stream_ordering)))
        .flatten();
    let mut read_positions = std::collections::HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let Some(ev) = s.rooms.event(&r.event_id).await? else { continue };
        let Ok(room_id) = ruma::RoomId::parse(&r.room_id) else { continue };
        // Notifications follow visibility like every other read path.
        if !s.rooms.visibility(user, &r.room_id).await?.allows(&ev.row).await? {
            continue;
        }
        // Read as the counts take it: threads by their own receipts.
        let key = (r.room_id.clone(), r.thread_id.clone());
        let read_pos = match read_positions.get(&key) {
            Some(p) => *p,
            None => {
                let p = s.rooms.read_position(user, &r.room_id, &r.thread_id).await?;
                read_positions.insert(key, p);
                p
            }
        };
        let mut event = super::room::view(&ev);
        event.as_object_mut().map(|o| o.remove("room_id"));
        let actions = serde_json::from_str(&r.actions).map_err(Error::internal)?;
        let ts = ruma::MilliSecondsSinceUnixEpoch(ruma::UInt::try_from(r.ts).unwrap_or_default());
        out.push(Notification::new(
            actions,
            super::room::raw_json(&event)?,
            r.stream_ordering <= read_pos,
            room_id,
            ts,
        ));
    }
    let mut resp = Response::new(out);
    resp.next_token = next_token;
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v3/pushers
pub async fn get_pushers(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::push::get_pushers::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::push::get_pushers::v3::Response>> {
    let pushers = s.pushers.list(&req.session().user_id).await?;
    Ok(RumaResponse(ruma::api::client::push::get_pushers::v3::Response::new(pushers)))
}

/// POST /_matrix/client/v3/pushers/set
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3pushersset>
pub async fn set_pusher(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::push::set_pusher::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::push::set_pusher::v3::Response>> {
    use ruma::api::client::push::set_pusher::v3::PusherAction;
    let user = &req.session().user_id;
    match &req.body.action {
        PusherAction::Post(post) => s.pushers.set(user, &post.pusher, post.append).await?,
        PusherAction::Delete(ids) => s.pushers.delete(user, ids).await?,
        _ => return Err(Error::invalid_param("Unknown pusher action")),
    }
    Ok(RumaResponse(ruma::api::client::push::set_pusher::v3::Response::new()))
}
