//! History visibility (spec: "History visibility", server behaviour): which events of a room a
//! user may see, decided per event from the room's `m.room.history_visibility` and the user's
//! membership as they were at that event.
//!
//! - `world_readable`: everyone;
//! - `shared`: members who were joined at the event, or who are joined now;
//! - `invited`: members who were invited or joined at the event;
//! - `joined`: members who were joined at the event.
//!
//! A user always sees their own membership events, and never the messages of someone they
//! ignore.
//!
//! The same look at the state after each event gives the user's membership there, which every
//! event served to a client carries as `unsigned.membership` (spec 1.11, MSC4115), so clients
//! can tell history from before they joined.

use std::collections::HashMap;

use ruma::{UserId, events::room::member::MembershipState};

use super::{Rooms, content_of};
use crate::{
    error::Result,
    matrix::client_event::EventView,
    storage::{self, events::EventRow, rooms::MembershipRow},
};

/// One user's view of one room; caches the answer per state group.
pub struct VisibilityCheck<'a> {
    rooms: &'a Rooms,
    user: &'a UserId,
    room_id: String,
    joined_now: bool,
    /// With `joined_now`: the stream position of the join. Every later event was sent while
    /// the user was joined, so it is visible without looking at its state.
    joined_since: Option<i64>,
    /// Per state group: (visible, the user's membership there).
    cache: HashMap<Option<i64>, (bool, MembershipState)>,
    /// The users this user ignores, read at the first message event looked at.
    ignored: Option<std::sync::Arc<std::collections::HashSet<String>>>,
    /// The user forgot the room: nothing of it is theirs to see.
    forgotten: bool,
    /// Accounts deactivated with `erase`, read at the first event the user was not joined for.
    erased: Option<std::sync::Arc<std::collections::HashSet<String>>>,
    /// The room version's redaction rules, read at the first such event of an erased sender.
    redaction: Option<ruma::room_version_rules::RedactionRules>,
}

impl Rooms {
    /// A checker for `user` in `room_id`.
    /// A room the user forgot shows them nothing.
    pub async fn visibility<'a>(&'a self, user: &'a UserId, room_id: &str) -> Result<VisibilityCheck<'a>> {
        let membership = storage::rooms::membership(&self.db.read, room_id, user.as_str()).await?;
        let mut check = self.visibility_with(user, room_id, membership.as_ref());
        let departed = membership.as_ref().is_some_and(|m| m.membership == "leave" || m.membership == "ban");
        check.forgotten = departed && self.forgot(room_id, user).await?;
        Ok(check)
    }

    /// `visibility` when the caller already read the user's current membership row.
    pub fn visibility_with<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &str,
        membership: Option<&MembershipRow>,
    ) -> VisibilityCheck<'a> {
        let joined = membership.filter(|m| m.membership == "join");
        VisibilityCheck {
            rooms: self,
            user,
            room_id: room_id.to_owned(),
            joined_now: joined.is_some(),
            joined_since: joined.map(|m| m.stream_ordering),
            cache: HashMap::new(),
            ignored: None,
            forgotten: false,
            erased: None,
            redaction: None,
        }
    }

    /// The accounts deactivated with `erase`.
    pub async fn erased_users(&self) -> Result<std::sync::Arc<std::collections::HashSet<String>>> {
        Ok(std::sync::Arc::new(storage::users::erased(&self.db.read).await?.into_iter().collect()))
    }

    /// Whether `user` may see anything of the room at all (a member now or once, or a
    /// world-readable room): the gate of read endpoints before per-event filtering.
    /// A room the user forgot is closed to them, world-readable or not.
    pub async fn may_read_room(&self, user: &UserId, room_id: &ruma::RoomId) -> Result<bool> {
        if storage::rooms::membership(&self.db.read, room_id.as_str(), user.as_str()).await?.is_some() {
            return Ok(!self.forgot(room_id.as_str(), user).await?);
        }
        let vis = self.current_state_event(room_id, "m.room.history_visibility", "").await?;
        Ok(vis.is_some_and(|e| content_of(e.json())["history_visibility"] == "world_readable"))
    }
}

/// Which state of a room a user may read through /state and /members, as Synapse decides where
/// the spec only says "the state as it was when the user left".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateReader {
    /// Joined now: the current state.
    Member,
    /// Not in the room, but it is world-readable: the current state (room previews).
    WorldReadable,
    /// Left: the state just after their leave, at this stream position.
    Departed(i64),
}

impl StateReader {
    /// Current members may see who is in the room now, and so may anyone of a world-readable
    /// room; a former member may not (Synapse: 403 from /joined_members).
    pub fn sees_current_members(self) -> bool {
        matches!(self, Self::Member | Self::WorldReadable)
    }
}

impl Rooms {
    /// How `user` may read the room's state; None: not at all.
    pub async fn state_reader(&self, user: &UserId, room_id: &ruma::RoomId) -> Result<Option<StateReader>> {
        let membership = storage::rooms::membership(&self.db.read, room_id.as_str(), user.as_str()).await?;
        let departed = membership.as_ref().is_some_and(|m| m.membership == "leave" || m.membership == "ban");
        if departed && self.forgot(room_id.as_str(), user).await? {
            // A forgotten room is closed to them, world-readable or not.
            return Ok(None);
        }
        match membership.as_ref().map(|m| (m.membership.as_str(), m.stream_ordering)) {
            Some(("join", _)) => return Ok(Some(StateReader::Member)),
            Some(("leave", at)) => return Ok(Some(StateReader::Departed(at))),
            _ => {}
        }
        let vis = self.current_state_event(room_id, "m.room.history_visibility", "").await?;
        let world = vis.is_some_and(|e| content_of(e.json())["history_visibility"] == "world_readable");
        Ok(world.then_some(StateReader::WorldReadable))
    }

    /// Whether `m` is an invite from someone the user ignores: such invites are not shown
    /// (spec: "Servers must not send room invites from ignored users to clients").
    pub async fn invite_from_ignored(&self, user: &UserId, m: &MembershipRow) -> Result<bool> {
        if m.membership != "invite" {
            return Ok(false);
        }
        let ignored = self.account_data.ignored_users(user).await?;
        if ignored.is_empty() {
            return Ok(false);
        }
        let sender = self.event(&m.event_id).await?.map(|e| e.row.sender);
        Ok(sender.is_some_and(|s| ignored.contains(&s)))
    }

    /// The state (type, state key) -> event ID that `reader` may read.
    pub async fn readable_state(
        &self,
        room_id: &ruma::RoomId,
        reader: StateReader,
    ) -> Result<std::sync::Arc<storage::state::StateMap>> {
        match reader {
            StateReader::Member | StateReader::WorldReadable => {
                Ok(std::sync::Arc::new(self.current_state_ids(room_id).await?))
            }
            StateReader::Departed(at) => self.state_at(room_id.as_str(), at).await,
        }
    }
}

impl VisibilityCheck<'_> {
    /// Whether the event (by its stored row) is visible.
    pub async fn allows(&mut self, row: &EventRow) -> Result<bool> {
        if row.room_id != self.room_id || self.forgotten {
            return Ok(false);
        }
        // Nothing but state from someone the user ignores (spec: "Ignoring Users"): state
        // still comes, so the room looks the same to everyone.
        if row.state_key.is_none() {
            let ignored = match &self.ignored {
                Some(set) => set,
                None => self.ignored.insert(self.rooms.account_data.ignored_users(self.user).await?),
            };
            if ignored.contains(&row.sender) {
                return Ok(false);
            }
        }
        if self.joined_since.is_some_and(|since| row.stream_ordering >= since) {
            return Ok(true);
        }
        // One always sees one's own membership changes (e.g. being kicked).
        if self.is_own_membership(row) {
            return Ok(true);
        }
        Ok(self.at_group(row.state_group).await?.0)
    }

    /// Sets `unsigned.membership` on `view`, the client form of `row`: the user's membership
    /// just after the event (`leave` when they never were in the room).
    ///
    /// And when the sender's account was erased and the user was not joined then, only the
    /// redacted form of the event is theirs to see (as Synapse: a person who asked to be
    /// forgotten is not read by people who were not there).
    pub async fn annotate<E: EventView>(&mut self, row: &EventRow, view: &mut E) -> Result<()> {
        let membership = if self.joined_since.is_some_and(|since| row.stream_ordering >= since) {
            // Joined since before the event and still joined: joined after it.
            MembershipState::Join
        } else if self.is_own_membership(row) {
            // The event itself says (rows may come without their JSON; the view has it).
            view.content_str("membership").map(MembershipState::from).unwrap_or(MembershipState::Leave)
        } else {
            self.at_group(row.state_group).await?.1
        };
        if membership != MembershipState::Join {
            self.redact_if_erased(row, view).await?;
        }
        view.set_unsigned("membership", serde_json::Value::from(membership.as_str()));
        Ok(())
    }

    /// Keeps only what a redaction keeps of `view`'s content when its sender was erased.
    async fn redact_if_erased<E: EventView>(&mut self, row: &EventRow, view: &mut E) -> Result<()> {
        let erased = match &self.erased {
            Some(set) => set,
            None => self.erased.insert(self.rooms.erased_users().await?),
        };
        if !erased.contains(&row.sender) {
            return Ok(());
        }
        let rules = match &self.redaction {
            Some(rules) => rules,
            None => {
                let room_id = ruma::RoomId::parse(&self.room_id).map_err(crate::error::Error::internal)?;
                let Some(room) = self.rooms.room(&room_id).await? else { return Ok(()) };
                self.redaction.insert(super::rules_for(&room.room_version)?.1.redaction)
            }
        };
        if let Some(content) = view.content() {
            // Content a client could send is canonical JSON; anything else goes whole.
            let mut kept: ruma::CanonicalJsonObject = serde_json::from_value(content).unwrap_or_default();
            ruma::canonical_json::redact_content_in_place(&mut kept, rules, &row.event_type);
            view.set_content(serde_json::to_value(kept).map_err(crate::error::Error::internal)?);
        }
        Ok(())
    }

    fn is_own_membership(&self, row: &EventRow) -> bool {
        row.event_type == "m.room.member" && row.state_key.as_deref() == Some(self.user.as_str())
    }

    /// Visibility and the user's membership at a state group, looked up once per group.
    async fn at_group(&mut self, group: Option<i64>) -> Result<(bool, MembershipState)> {
        if let Some(v) = self.cache.get(&group) {
            return Ok(v.clone());
        }
        let answer = match group {
            None => (false, MembershipState::Leave),
            Some(group) => {
                let me = self.user.as_str();
                let keys = [("m.room.history_visibility", ""), ("m.room.member", me)];
                let state = storage::state::lookup(&self.rooms.db.read, group, &keys).await?;
                let content = async |t: &str, k: &str| -> Result<serde_json::Value> {
                    match state.get(&(t.to_owned(), k.to_owned())) {
                        Some(id) => Ok(self.rooms.event(id).await?.map(|e| content_of(e.json())).unwrap_or_default()),
                        None => Ok(serde_json::Value::Null),
                    }
                };
                let vis = content("m.room.history_visibility", "").await?;
                // The spec's default when the room has no history_visibility is "shared".
                let vis = vis["history_visibility"].as_str().unwrap_or("shared").to_owned();
                let membership = content("m.room.member", me).await?;
                let membership =
                    membership["membership"].as_str().map(MembershipState::from).unwrap_or(MembershipState::Leave);
                let visible = match vis.as_str() {
                    "world_readable" => true,
                    _ if membership == MembershipState::Join => true,
                    "shared" => self.joined_now,
                    "invited" => membership == MembershipState::Invite,
                    _ => false,
                };
                (visible, membership)
            }
        };
        self.cache.insert(group, answer.clone());
        Ok(answer)
    }

    /// Keeps the visible rows, in order.
    pub async fn filter(&mut self, rows: Vec<EventRow>) -> Result<Vec<EventRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if self.allows(&r).await? {
                out.push(r);
            }
        }
        Ok(out)
    }
}
