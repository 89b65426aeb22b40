//! Space hierarchies across servers (spec: client-server "Spaces", server-server
//! `/hierarchy`): a local user browsing a space sees the rooms this server does not know too,
//! asked of the servers the space names for them (`via`); other servers browsing a space of
//! this server get what they may see of it.

use std::collections::{HashMap, HashSet, VecDeque};

use ruma::{OwnedRoomId, RoomId, ServerName, UserId, api::federation::space::get_hierarchy};
use serde_json::Value;

use super::Federation;
use crate::error::{Error, Result};

/// Rooms asked of other servers for one hierarchy, at most (a space of spaces of strangers'
/// rooms must not turn one request into hundreds).
const MAX_REMOTE_ROOMS: usize = 50;
/// Servers tried per room.
const VIA_TRIED: usize = 3;

/// What another server is told of a space: the room (summary and `children_state`), the
/// children it may see, and those it may not.
pub struct ServedHierarchy {
    pub room: Value,
    pub children: Vec<Value>,
    pub inaccessible: Vec<OwnedRoomId>,
}

impl Federation {
    /// The rooms of a space, breadth first from `root`, as `user` may see them: each room's
    /// summary with its `children_state`. None when the space itself is not theirs to see.
    pub async fn space_hierarchy(
        &self,
        user: &UserId,
        root: &RoomId,
        max_depth: usize,
        suggested_only: bool,
    ) -> Result<Option<Vec<Value>>> {
        let mut out = Vec::new();
        let mut seen: HashSet<OwnedRoomId> = HashSet::new();
        // Summaries of rooms other servers gave as children (used for the deepest level).
        let mut known_remote: HashMap<OwnedRoomId, Value> = HashMap::new();
        let mut asked = 0;
        let mut queue: VecDeque<(OwnedRoomId, Vec<String>, usize)> = VecDeque::from([(root.to_owned(), vec![], 0)]);
        while let Some((room, via, depth)) = queue.pop_front() {
            if !seen.insert(room.clone()) {
                continue;
            }
            let (summary, children) = match self.rooms.hierarchy_node(&room, suggested_only).await? {
                Some(node) => {
                    if !self.rooms.may_preview(user, &room).await? {
                        continue;
                    }
                    (node.summary, node.children)
                }
                None => {
                    let summary = match known_remote.remove(&room) {
                        // The deepest level needs no children: the summary the parent's server
                        // gave is enough.
                        Some(mut s) if depth >= max_depth => {
                            s["children_state"] = Value::Array(Vec::new());
                            s
                        }
                        _ if asked >= MAX_REMOTE_ROOMS => continue,
                        _ => {
                            asked += 1;
                            let Some(resp) = self.remote_hierarchy(&room, &via, suggested_only).await else { continue };
                            for child in resp.children {
                                if let Ok(v) = serde_json::to_value(&child) {
                                    known_remote.insert(child.room_id.clone(), v);
                                }
                            }
                            serde_json::to_value(&resp.room).map_err(Error::internal)?
                        }
                    };
                    if !self.remote_room_visible(user, &summary).await? {
                        continue;
                    }
                    let children = children_of(&summary);
                    (summary, children)
                }
            };
            if depth < max_depth {
                for (child, via) in children {
                    queue.push_back((child, via, depth + 1));
                }
            }
            out.push(summary);
        }
        // The root comes first when the user may see it: a space this server does not know (no
        // `via` to ask) or may not show them gives nothing at all.
        Ok((!out.is_empty()).then_some(out))
    }

    /// Asks the `via` servers, in turn, for a room's hierarchy.
    async fn remote_hierarchy(
        &self,
        room: &RoomId,
        via: &[String],
        suggested_only: bool,
    ) -> Option<get_hierarchy::v1::Response> {
        let ours = self.client.origin().as_str();
        for server in via.iter().filter(|s| s.as_str() != ours).take(VIA_TRIED) {
            let Ok(name) = <&ServerName>::try_from(server.as_str()) else { continue };
            let mut request = get_hierarchy::v1::Request::new(room.to_owned());
            request.suggested_only = suggested_only;
            match self.client.send(name, request).await {
                Ok(resp) if resp.room.summary.room_id == room => return Some(resp),
                Ok(_) => tracing::info!(%server, %room, "a hierarchy answer about another room was ignored"),
                Err(e) => tracing::info!(%server, %room, error = %e, "a space's room could not be asked about"),
            }
        }
        None
    }

    /// Whether `user` may see a room only another server knows, from its summary (as Synapse
    /// judges it): public, knockable or world-readable rooms, rooms they have a membership in,
    /// and restricted ones open to a room they are in.
    async fn remote_room_visible(&self, user: &UserId, summary: &Value) -> Result<bool> {
        let Some(room) = summary["room_id"].as_str().and_then(|r| RoomId::parse(r).ok()) else { return Ok(false) };
        let rule = summary["join_rule"].as_str().unwrap_or("public");
        if matches!(rule, "public" | "knock") || summary["world_readable"] == true {
            return Ok(true);
        }
        if matches!(self.rooms.membership(&room, user).await?.as_deref(), Some("join" | "invite" | "knock")) {
            return Ok(true);
        }
        if matches!(rule, "restricted" | "knock_restricted") {
            for allowed in summary["allowed_room_ids"].as_array().into_iter().flatten() {
                if let Some(r) = allowed.as_str().and_then(|r| RoomId::parse(r).ok())
                    && self.rooms.membership(&r, user).await?.as_deref() == Some("join")
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// `/hierarchy` from another server: the room and its children that server may see.
    pub async fn hierarchy_for_server(
        &self,
        origin: &ServerName,
        room: &RoomId,
        suggested_only: bool,
    ) -> Result<ServedHierarchy> {
        let node = match self.rooms.hierarchy_node(room, suggested_only).await? {
            Some(node) if self.rooms.server_may_preview(origin, room).await? => node,
            _ => return Err(Error::not_found("Unknown room")),
        };
        let mut served = ServedHierarchy { room: node.summary, children: Vec::new(), inaccessible: Vec::new() };
        for (child, _) in node.children {
            let Some(mut c) = self.rooms.hierarchy_node(&child, suggested_only).await? else { continue };
            if self.rooms.server_may_preview(origin, &child).await? {
                c.summary.as_object_mut().map(|o| o.remove("children_state"));
                served.children.push(c.summary);
            } else {
                served.inaccessible.push(child);
            }
        }
        Ok(served)
    }
}

/// The children a summary's `children_state` names, with their `via` servers.
fn children_of(summary: &Value) -> Vec<(OwnedRoomId, Vec<String>)> {
    summary["children_state"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let room = RoomId::parse(e["state_key"].as_str()?).ok()?;
            let via: Vec<String> =
                e["content"]["via"].as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            (!via.is_empty()).then_some((room, via))
        })
        .collect()
}
