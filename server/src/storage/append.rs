//! Appending events and everything they change (graph edges, extremities, state group,
//! current state, membership, search index, relation, push actions) as one transaction sent to
//! SQLite in a single round trip.
//!
//! sqlx runs each SQLite connection on its own thread; every statement sent separately is a
//! hand-off between threads, and those hand-offs, not SQLite, were most of the CPU a send cost.
//! So the whole transaction, `BEGIN` to `COMMIT`, is one multi-statement query, and it carries
//! as many events as are waiting (group commit: one WAL sync for all of them). Variable-length
//! lists travel as one JSON array each (`json_each`), which keeps the SQL text of one event's
//! statements to a handful of shapes.

use serde_json::json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// A new event row with its graph edges.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub room_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub origin_server_ts: i64,
    pub depth: i64,
    pub pdu: String,
    pub rejected: bool,
    pub soft_failed: bool,
    /// Stored without its place in the room's history (an invite to a room of another server
    /// this server is not in): never in a timeline, never a forward extremity.
    pub outlier: bool,
    /// The state after the event.
    pub state_group: Option<i64>,
    /// The room's state after the event was appended, when state resolution made it differ.
    pub resolved_state_group: Option<i64>,
    /// The event becomes a forward extremity (replacing its prev_events); false for rejected
    /// and soft-failed events.
    pub extremity: bool,
    /// (user, device, transaction ID) of a client send.
    pub txn: Option<(String, String, String)>,
    pub prev_events: Vec<String>,
    pub auth_events: Vec<String>,
    /// The room's state before the event, for an event whose prev events are not stored (the
    /// first event of a room joined through another server).
    pub state_before_group: Option<i64>,
    /// A position chosen by the caller: history fetched from another server (backfill) goes
    /// before everything this server had, at negative positions. None: the next one.
    pub stream_ordering: Option<i64>,
    /// Another server's user's membership event handed to this server to send on to the
    /// room's other servers (`send_join`, `send_leave`, `send_knock`).
    pub relay: bool,
}

/// An outlier: an event of the room's state or auth chain that another server sent without
/// its place in the room's history (see the migration `outliers`). Stored with its auth edges
/// only; an event already stored is left as it is.
#[derive(Debug, Clone)]
pub struct NewOutlier {
    pub event_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub origin_server_ts: i64,
    pub depth: i64,
    pub pdu: String,
    pub rejected: bool,
    pub auth_events: Vec<String>,
}

/// A new state group for a state event.
#[derive(Debug, Clone)]
pub struct NewStateGroup {
    pub id: i64,
    pub prev: Option<i64>,
    pub chain_len: i64,
    /// The group's own entries (type, state key, event ID): the delta, or the full state for a
    /// snapshot.
    pub entries: Vec<(String, String, String)>,
}

/// What an event's push rules decided, as it is stored (see `push_actions`): one row for the
/// room when most local members are notified the same way, and a row of their own for each
/// member whose outcome differs from it.
#[derive(Debug, Clone, Default)]
pub struct PushRows {
    /// The thread the event is in ("" for the main timeline).
    pub thread: String,
    /// (highlight, actions as JSON) that every local member joined at the event's position
    /// gets, unless a row of their own says otherwise.
    pub room: Option<(bool, String)>,
    /// Members' own rows.
    pub members: Vec<PushRow>,
    /// Every user the event notifies, by the room's row or their own (for the pushers).
    pub notified: Vec<String>,
}

/// A member's own outcome for an event: notified with (highlight, actions as JSON), or, for a
/// member the room's row would otherwise cover, not notified (None).
#[derive(Debug, Clone)]
pub struct PushRow {
    pub user_id: String,
    pub notified: Option<(bool, String)>,
}

/// How the room's current state changes.
#[derive(Debug, Clone, Default)]
pub enum CurrentState {
    #[default]
    Unchanged,
    /// The state event itself takes its place; the current group becomes the event's group.
    Own,
    /// State resolution chose a new current state: the group, and each (type, state key,
    /// event ID or None for gone) that changed.
    Replace { group: i64, changes: Vec<(String, String, Option<String>)> },
}

/// A user's membership in the room changed: now `membership`, by the member event `event_id`.
#[derive(Debug, Clone)]
pub struct MembershipChange {
    pub user_id: String,
    pub membership: String,
    pub event_id: String,
}

#[derive(Debug, Clone)]
pub struct Append {
    /// Set for a room's create event: (room version, creator, created_ts).
    pub new_room: Option<(String, String, i64)>,
    pub event: NewEvent,
    /// Outliers written before the event (see `NewOutlier`).
    pub outliers: Vec<NewOutlier>,
    /// The event replaces all of the room's forward extremities, not only its prev events
    /// (it follows events this server does not have).
    pub reset_extremities: bool,
    /// State groups to write (parents first).
    pub state_groups: Vec<NewStateGroup>,
    pub current: CurrentState,
    /// Memberships that change with the room's current state.
    pub memberships: Vec<MembershipChange>,
    /// The text the full-text index holds for the event (which field follows from its type).
    pub search: Option<String>,
    /// (parent event, rel_type) of a relation.
    pub relation: Option<(String, String)>,
    pub push: PushRows,
}

/// The outcome of a committed append.
#[derive(Debug, Clone, Default)]
pub struct Appended {
    pub stream: i64,
    /// Those of the notified users who have pushers.
    pub users_with_pushers: Vec<String>,
}

/// Writes the events, in order, in one transaction; on error nothing is written (the
/// transaction is rolled back before returning). Answers one `Appended` per event.
pub async fn append_all(conn: &mut SqliteConnection, all: &[&Append]) -> sqlx::Result<Vec<Appended>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE;\n");
    for (i, a) in all.iter().enumerate() {
        push_append(&mut q, i as i64, a);
    }
    q.push("COMMIT;");
    let rows: sqlx::Result<Vec<(i64, i64, Option<String>)>> = q.build_query_as().fetch_all(&mut *conn).await;
    match rows {
        Ok(rows) => {
            let mut out = vec![Appended::default(); all.len()];
            for (i, stream, user) in rows {
                let Some(slot) = out.get_mut(i as usize) else { continue };
                slot.stream = stream;
                slot.users_with_pushers.extend(user);
            }
            if out.iter().any(|a| a.stream == 0) {
                return Err(sqlx::Error::Protocol("append returned no stream position".into()));
            }
            Ok(out)
        }
        Err(err) => {
            // A failed statement leaves the transaction open on this connection.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(err)
        }
    }
}

/// The statements of one event, ending with a SELECT of (index, stream position, NULL) and
/// (index, stream position, user) per notified user with pushers.
fn push_append(q: &mut QueryBuilder<Sqlite>, index: i64, a: &Append) {
    let e = &a.event;
    let room = e.room_id.as_str();
    if let Some((version, creator, ts)) = &a.new_room {
        q.push("INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (")
            .push_bind(room)
            .push(", ")
            .push_bind(version.as_str())
            .push(", ")
            .push_bind(creator.as_str())
            .push(", ")
            .push_bind(*ts)
            .push(");\n");
    }
    if !a.outliers.is_empty() {
        push_outliers(q, room, &a.outliers);
    }
    for g in &a.state_groups {
        q.push("INSERT INTO state_groups (id, room_id, prev_group, chain_len) VALUES (")
            .push_bind(g.id)
            .push(", ")
            .push_bind(room)
            .push(", ")
            .push_bind(g.prev)
            .push(", ")
            .push_bind(g.chain_len)
            .push(");\n");
        let entries: Vec<[&str; 3]> =
            g.entries.iter().map(|(t, k, id)| [t.as_str(), k.as_str(), id.as_str()]).collect();
        q.push(
            "INSERT INTO state_group_entries (state_group, event_type, state_key, event_id)
             SELECT ",
        )
        .push_bind(g.id)
        .push(", json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(")
        .push_bind(json!(entries).to_string())
        .push(");\n");
    }
    let (tu, td, tid) = match &e.txn {
        Some((u, d, t)) => (Some(u.as_str()), Some(d.as_str()), Some(t.as_str())),
        None => (None, None, None),
    };
    q.push("INSERT INTO events (stream_ordering, event_id, room_id, event_type, state_key, sender, origin_server_ts, depth, pdu, rejected, soft_failed, outlier, relay, state_group, resolved_state_group, state_before_group, txn_user_id, txn_device_id, txn_id) VALUES (");
    {
        // A backfilled event brings its (negative) position; a new one goes above every
        // position handed out, a purged room's included.
        q.push("COALESCE(").push_bind(e.stream_ordering).push(", ");
        q.push(super::purge::next_position!("floor_events", "events", "stream_ordering")).push("), ");
        let mut sep = q.separated(", ");
        sep.push_bind(e.event_id.as_str())
            .push_bind(room)
            .push_bind(e.event_type.as_str())
            .push_bind(e.state_key.as_deref())
            .push_bind(e.sender.as_str())
            .push_bind(e.origin_server_ts)
            .push_bind(e.depth)
            .push_bind(e.pdu.as_str())
            .push_bind(e.rejected)
            .push_bind(e.soft_failed)
            .push_bind(e.outlier)
            .push_bind(e.relay)
            .push_bind(e.state_group)
            .push_bind(e.resolved_state_group)
            .push_bind(e.state_before_group)
            .push_bind(tu)
            .push_bind(td)
            .push_bind(tid);
    }
    q.push(");\n");
    // The room's head moves to the event (its position is the row ID just inserted); one
    // backfilled below everything moves nothing. Likewise its latest relation.
    q.push("UPDATE rooms SET head = MAX(IFNULL(head, last_insert_rowid()), last_insert_rowid())");
    if a.relation.is_some() {
        q.push(", relation_head = MAX(IFNULL(relation_head, last_insert_rowid()), last_insert_rowid())");
    }
    q.push(" WHERE room_id = ").push_bind(room).push(";\n");
    // Only anonymous parameters: sqlx numbers them across statements, and numbered ones would
    // not mix with that.
    let id = e.event_id.as_str();
    q.push("INSERT OR IGNORE INTO event_edges (event_id, prev_event_id) SELECT ")
        .push_bind(id)
        .push(", value FROM json_each(")
        .push_bind(json!(e.prev_events).to_string())
        .push(");\n");
    q.push("INSERT OR IGNORE INTO event_auth (event_id, auth_event_id) SELECT ")
        .push_bind(id)
        .push(", value FROM json_each(")
        .push_bind(json!(e.auth_events).to_string())
        .push(");\n");
    if a.reset_extremities {
        q.push("DELETE FROM forward_extremities WHERE room_id = ").push_bind(room).push(";\n");
    }
    if e.extremity {
        q.push("DELETE FROM forward_extremities WHERE room_id = ")
            .push_bind(room)
            .push(" AND event_id IN (SELECT value FROM json_each(")
            .push_bind(json!(e.prev_events).to_string())
            .push("));\n");
        q.push("INSERT OR IGNORE INTO forward_extremities (room_id, event_id) VALUES (")
            .push_bind(room)
            .push(", ")
            .push_bind(id)
            .push(");\n");
    }
    match &a.current {
        CurrentState::Unchanged => {}
        CurrentState::Own => {
            if let (Some(key), Some(g)) = (e.state_key.as_deref(), e.state_group) {
                q.push("INSERT INTO current_state (room_id, event_type, state_key, event_id) VALUES (");
                q.separated(", ").push_bind(room).push_bind(e.event_type.as_str()).push_bind(key).push_bind(id);
                q.push(") ON CONFLICT (room_id, event_type, state_key) DO UPDATE SET event_id = excluded.event_id;\n");
                q.push("UPDATE rooms SET current_state_group = ")
                    .push_bind(g)
                    .push(" WHERE room_id = ")
                    .push_bind(room)
                    .push(";\n");
            }
        }
        CurrentState::Replace { group, changes } => {
            let gone: Vec<[&str; 2]> =
                changes.iter().filter(|c| c.2.is_none()).map(|(t, k, _)| [t.as_str(), k.as_str()]).collect();
            let set: Vec<[&str; 3]> =
                changes.iter().filter_map(|(t, k, id)| id.as_deref().map(|id| [t.as_str(), k.as_str(), id])).collect();
            if !gone.is_empty() {
                q.push("DELETE FROM current_state WHERE room_id = ")
                    .push_bind(room)
                    .push(" AND (event_type, state_key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(")
                    .push_bind(json!(gone).to_string())
                    .push("));\n");
            }
            if !set.is_empty() {
                q.push("INSERT INTO current_state (room_id, event_type, state_key, event_id) SELECT ")
                    .push_bind(room)
                    .push(", json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(")
                    .push_bind(json!(set).to_string())
                    .push(") WHERE true ON CONFLICT (room_id, event_type, state_key) DO UPDATE SET event_id = excluded.event_id;\n");
            }
            q.push("UPDATE rooms SET current_state_group = ")
                .push_bind(*group)
                .push(" WHERE room_id = ")
                .push_bind(room)
                .push(";\n");
        }
    }
    if !a.memberships.is_empty() {
        let changes: Vec<[&str; 3]> =
            a.memberships.iter().map(|m| [m.user_id.as_str(), m.membership.as_str(), m.event_id.as_str()]).collect();
        // The stream position is the appended event's: that is when the change happened for
        // /sync, also when resolution brought back an older member event.
        q.push("INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering) SELECT ")
            .push_bind(room)
            .push(", json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ");
        push_stream(q, id);
        q.push(" FROM json_each(").push_bind(json!(changes).to_string()).push(
            ") WHERE true ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
             event_id = excluded.event_id, stream_ordering = excluded.stream_ordering;\n",
        );
    }
    if let Some(body) = &a.search {
        // Keyed by the event's position; the field searched follows from its type.
        q.push("INSERT INTO event_search (rowid, body) VALUES (");
        push_stream(q, id);
        q.push(", ").push_bind(body.as_str()).push(");\n");
    }
    if let Some((parent, rel_type)) = &a.relation {
        q.push("INSERT OR IGNORE INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, event_type, stream_ordering) VALUES (");
        q.separated(", ")
            .push_bind(id)
            .push_bind(parent.as_str())
            .push_bind(rel_type.as_str())
            .push_bind(room)
            .push_bind(e.sender.as_str())
            .push_bind(e.event_type.as_str());
        q.push(", ");
        push_stream(q, id);
        q.push(");\n");
    }
    push_rows(q, room, id, &a.push);
    if !a.memberships.is_empty() {
        push_spans(q, room, id, &a.memberships);
    }
    // The answer: the stream position, then once more per notified user who has pushers.
    q.push("SELECT ").push_bind(index).push(", ");
    push_stream(q, id);
    q.push(", NULL UNION ALL SELECT ").push_bind(index).push(", ");
    push_stream(q, id);
    q.push(", user_id FROM (SELECT DISTINCT user_id FROM pushers WHERE user_id IN (SELECT value FROM json_each(")
        .push_bind(json!(a.push.notified).to_string())
        .push(")));\n");
}

/// The event's push actions: the room's row and the members' own rows.
fn push_rows(q: &mut QueryBuilder<Sqlite>, room: &str, id: &str, push: &PushRows) {
    if push.room.is_none() && push.members.is_empty() {
        return;
    }
    // The room gets its number the first time anyone in it is notified.
    q.push("INSERT OR IGNORE INTO room_nids (room_id) VALUES (").push_bind(room).push(");\n");
    if let Some((highlight, actions)) = &push.room {
        let (flags, actions) = super::push_actions::compact(*highlight, actions);
        q.push("INSERT OR IGNORE INTO push_room_actions (room_nid, stream_ordering, thread_id, flags, actions) SELECT nid, ");
        push_stream(q, id);
        q.push(", ")
            .push_bind(push.thread.as_str())
            .push(", ")
            .push_bind(flags)
            .push(", ")
            .push_bind(actions.map(str::to_owned))
            .push(" FROM room_nids WHERE room_id = ")
            .push_bind(room)
            .push(";\n");
    }
    if push.members.is_empty() {
        return;
    }
    let rows: Vec<serde_json::Value> = push
        .members
        .iter()
        .map(|p| match &p.notified {
            Some((highlight, actions)) => {
                let (flags, actions) = super::push_actions::compact(*highlight, actions);
                json!({ "u": p.user_id, "f": flags, "a": actions })
            }
            None => json!({ "u": p.user_id, "f": super::push_actions::NOT_NOTIFIED, "a": null }),
        })
        .collect();
    let rows = json!(rows).to_string();
    // Users get their numbers the first time they have a row of their own.
    q.push("INSERT OR IGNORE INTO user_nids (user_id) SELECT json_extract(value, '$.u') FROM json_each(")
        .push_bind(rows.clone())
        .push(");\n");
    // CROSS JOIN: the users are the outer loop, each found by index (with the statistics of a
    // small server, SQLite scanned every user and the list per user).
    q.push("INSERT OR IGNORE INTO push_actions (user_nid, room_nid, stream_ordering, thread_id, flags, actions) SELECT u.nid, (SELECT nid FROM room_nids WHERE room_id = ")
        .push_bind(room)
        .push("), ");
    push_stream(q, id);
    q.push(", ")
        .push_bind(push.thread.as_str())
        .push(", json_extract(value, '$.f'), json_extract(value, '$.a') FROM json_each(")
        .push_bind(rows)
        .push(") CROSS JOIN user_nids u ON u.user_id = json_extract(value, '$.u');\n");
}

/// Opens a local user's span in `push_spans` when they join, and closes it when they stop
/// being joined (a change from join to join, a new display name, leaves it as it is).
fn push_spans(q: &mut QueryBuilder<Sqlite>, room: &str, id: &str, changes: &[MembershipChange]) {
    // Local users only: only they are notified here.
    let local =
        "SELECT json_extract(value, '$[0]') AS user_id, json_extract(value, '$[1]') AS membership FROM json_each(";
    let changes =
        json!(changes.iter().map(|m| [m.user_id.as_str(), m.membership.as_str()]).collect::<Vec<_>>()).to_string();
    q.push("INSERT OR IGNORE INTO user_nids (user_id) SELECT c.user_id FROM (")
        .push(local)
        .push_bind(changes.clone())
        .push(")) c CROSS JOIN users u ON u.user_id = c.user_id WHERE c.membership = 'join';\n");
    q.push("INSERT OR IGNORE INTO room_nids (room_id) SELECT ")
        .push_bind(room)
        .push(" WHERE EXISTS (SELECT 1 FROM (")
        .push(local)
        .push_bind(changes.clone())
        .push(")) c CROSS JOIN users u ON u.user_id = c.user_id WHERE c.membership = 'join');\n");
    q.push("UPDATE push_spans SET to_stream = ");
    push_stream(q, id);
    q.push(" WHERE to_stream IS NULL AND room_nid = (SELECT nid FROM room_nids WHERE room_id = ")
        .push_bind(room)
        .push(") AND user_nid IN (SELECT u.nid FROM (")
        .push(local)
        .push_bind(changes.clone())
        .push(")) c CROSS JOIN user_nids u ON u.user_id = c.user_id WHERE c.membership <> 'join');\n");
    q.push("INSERT INTO push_spans (user_nid, room_nid, from_stream) SELECT u.nid, r.nid, ");
    push_stream(q, id);
    q.push(" FROM (")
        .push(local)
        .push_bind(changes)
        .push(")) c CROSS JOIN user_nids u ON u.user_id = c.user_id CROSS JOIN room_nids r ON r.room_id = ")
        .push_bind(room)
        .push(
            " WHERE c.membership = 'join' AND EXISTS (SELECT 1 FROM users WHERE user_id = c.user_id)
               AND NOT EXISTS (SELECT 1 FROM push_spans s WHERE s.user_nid = u.nid AND s.room_nid = r.nid AND s.to_stream IS NULL);\n",
        );
}

/// Stores outliers of a room on their own (the state and auth events fetched to place an event
/// that follows a gap), in one transaction.
pub async fn insert_outliers(conn: &mut SqliteConnection, room: &str, outliers: &[NewOutlier]) -> sqlx::Result<()> {
    if outliers.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE;\n");
    push_outliers(&mut q, room, outliers);
    q.push("COMMIT;");
    if let Err(e) = q.build().execute(&mut *conn).await {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e);
    }
    Ok(())
}

/// The outliers of one append, in two statements whatever their number (a big room's state
/// is thousands of events).
fn push_outliers(q: &mut QueryBuilder<Sqlite>, room: &str, outliers: &[NewOutlier]) {
    let rows: Vec<serde_json::Value> = outliers
        .iter()
        .map(|o| {
            json!([
                o.event_id,
                o.event_type,
                o.state_key,
                o.sender,
                o.origin_server_ts,
                o.depth,
                o.pdu,
                o.rejected as i64
            ])
        })
        .collect();
    q.push(
        "INSERT OR IGNORE INTO events (event_id, room_id, event_type, state_key, sender, origin_server_ts, depth, pdu, rejected, outlier) SELECT
         json_extract(value, '$[0]'), ",
    )
    .push_bind(room)
    .push(
        ", json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),
         json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), 1 FROM json_each(",
    )
    .push_bind(json!(rows).to_string())
    .push(");\n");
    // Outliers are numbered above everything stored: the head may have moved.
    q.push(concat!("UPDATE rooms SET head = ", super::events::room_head!(), " WHERE room_id = "))
        .push_bind(room)
        .push(";\n");
    let edges: Vec<[&str; 2]> =
        outliers.iter().flat_map(|o| o.auth_events.iter().map(|a| [o.event_id.as_str(), a.as_str()])).collect();
    q.push("INSERT OR IGNORE INTO event_auth (event_id, auth_event_id) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(")
        .push_bind(json!(edges).to_string())
        .push(");\n");
}

/// The stream position the event got, as an SQL expression.
fn push_stream(q: &mut QueryBuilder<Sqlite>, event_id: &str) {
    q.push("(SELECT stream_ordering FROM events WHERE event_id = ").push_bind(event_id).push(")");
}
