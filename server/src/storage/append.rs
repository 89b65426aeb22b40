//! Appending one event and everything it changes (graph edges, extremities, state group,
//! current state, membership, search index, relation, push actions) as one transaction sent to
//! SQLite in a single round trip.
//!
//! sqlx runs each SQLite connection on its own thread; every statement sent separately is a
//! hand-off between threads, and those hand-offs, not SQLite, were most of the CPU a send cost.
//! So the whole transaction, `BEGIN` to `COMMIT`, is one multi-statement query. Variable-length
//! lists travel as one JSON array each (`json_each`), which keeps the SQL text, and so sqlx's
//! prepared statement cache, to a handful of shapes.

use serde_json::json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// A new state group for a state event.
pub struct NewStateGroup<'a> {
    pub id: i64,
    pub prev: Option<i64>,
    pub chain_len: i64,
    /// The group's own entries: the delta, or the full state for a snapshot.
    pub entries: Vec<(&'a str, &'a str, &'a str)>,
}

/// A push action row: the event notifies `user_id`.
pub struct PushRow<'a> {
    pub user_id: &'a str,
    pub highlight: bool,
    pub actions: String,
}

pub struct Append<'a> {
    /// Set for a room's create event: (room version, creator, created_ts).
    pub new_room: Option<(&'a str, &'a str, i64)>,
    pub event: super::events::NewEvent<'a>,
    /// The extremities the event replaces.
    pub replaces: &'a [String],
    pub state_group: Option<NewStateGroup<'a>>,
    /// For a member event: the new membership of the state key.
    pub membership: Option<&'a str>,
    /// Full-text index entry: (search key, text).
    pub search: Option<(&'a str, &'a str)>,
    /// (parent event, rel_type) of a relation.
    pub relation: Option<(&'a str, &'a str)>,
    pub push: Vec<PushRow<'a>>,
    pub push_thread: &'a str,
    pub now: i64,
}

/// The outcome of a committed append.
pub struct Appended {
    pub stream: i64,
    /// Those of the notified users who have pushers.
    pub users_with_pushers: Vec<String>,
}

/// Writes the event in one transaction. On error nothing is written (the transaction is rolled
/// back before returning).
pub async fn append(conn: &mut SqliteConnection, a: &Append<'_>) -> sqlx::Result<Appended> {
    let e = &a.event;
    let room = e.room_id;
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE;\n");
    if let Some((version, creator, ts)) = a.new_room {
        q.push("INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (")
            .push_bind(room)
            .push(", ")
            .push_bind(version)
            .push(", ")
            .push_bind(creator)
            .push(", ")
            .push_bind(ts)
            .push(");\n");
    }
    if let Some(g) = &a.state_group {
        q.push("INSERT INTO state_groups (id, room_id, prev_group, chain_len) VALUES (")
            .push_bind(g.id)
            .push(", ")
            .push_bind(room)
            .push(", ")
            .push_bind(g.prev)
            .push(", ")
            .push_bind(g.chain_len)
            .push(");\n");
        let entries: Vec<[&str; 3]> = g.entries.iter().map(|(t, k, id)| [*t, *k, *id]).collect();
        q.push(
            "INSERT INTO state_group_entries (state_group, event_type, state_key, event_id)
             SELECT ",
        )
        .push_bind(g.id)
        .push(", json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(")
        .push_bind(json!(entries).to_string())
        .push(");\n");
    }
    let (tu, td, tid) = match e.txn {
        Some((u, d, t)) => (Some(u), Some(d), Some(t)),
        None => (None, None, None),
    };
    q.push("INSERT INTO events (event_id, room_id, event_type, state_key, sender, origin_server_ts, depth, pdu, rejected, state_group, txn_user_id, txn_device_id, txn_id) VALUES (");
    {
        let mut sep = q.separated(", ");
        sep.push_bind(e.event_id)
            .push_bind(room)
            .push_bind(e.event_type)
            .push_bind(e.state_key)
            .push_bind(e.sender)
            .push_bind(e.origin_server_ts)
            .push_bind(e.depth)
            .push_bind(e.pdu)
            .push_bind(e.rejected)
            .push_bind(e.state_group)
            .push_bind(tu)
            .push_bind(td)
            .push_bind(tid);
    }
    q.push(");\n");
    // Only anonymous parameters: sqlx numbers them across statements, and numbered ones would
    // not mix with that.
    let id = e.event_id;
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
    q.push("DELETE FROM forward_extremities WHERE room_id = ")
        .push_bind(room)
        .push(" AND event_id IN (SELECT value FROM json_each(")
        .push_bind(json!(a.replaces).to_string())
        .push("));\n");
    q.push("INSERT OR IGNORE INTO forward_extremities (room_id, event_id) VALUES (").push_bind(room).push(", ").push_bind(id).push(");\n");
    if let (Some(key), Some(g)) = (e.state_key, &a.state_group) {
        q.push("INSERT INTO current_state (room_id, event_type, state_key, event_id) VALUES (");
        q.separated(", ").push_bind(room).push_bind(e.event_type).push_bind(key).push_bind(id);
        q.push(") ON CONFLICT (room_id, event_type, state_key) DO UPDATE SET event_id = excluded.event_id;\n");
        q.push("UPDATE rooms SET current_state_group = ").push_bind(g.id).push(" WHERE room_id = ").push_bind(room).push(";\n");
        if let Some(m) = a.membership {
            q.push("INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering) VALUES (");
            q.separated(", ").push_bind(room).push_bind(key).push_bind(m).push_bind(id);
            q.push(", ");
            push_stream(&mut q, id);
            q.push(
                ") ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
                 event_id = excluded.event_id, stream_ordering = excluded.stream_ordering;\n",
            );
        }
    }
    if let Some((key, body)) = a.search {
        q.push("INSERT INTO events_fts (body, event_id, room_id, stream_ordering, search_key) VALUES (");
        q.separated(", ").push_bind(body).push_bind(id).push_bind(room);
        q.push(", ");
        push_stream(&mut q, id);
        q.push(", ").push_bind(key).push(");\n");
    }
    if let Some((parent, rel_type)) = a.relation {
        q.push("INSERT OR IGNORE INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, event_type, stream_ordering) VALUES (");
        q.separated(", ").push_bind(id).push_bind(parent).push_bind(rel_type).push_bind(room).push_bind(e.sender).push_bind(e.event_type);
        q.push(", ");
        push_stream(&mut q, id);
        q.push(");\n");
    }
    let push: Vec<serde_json::Value> =
        a.push.iter().map(|p| json!({ "u": p.user_id, "h": p.highlight as i64, "a": p.actions })).collect();
    let push_json = json!(push).to_string();
    if !a.push.is_empty() {
        q.push("INSERT OR IGNORE INTO event_push_actions (event_id, user_id, room_id, stream_ordering, thread_id, highlight, actions, ts) SELECT ")
            .push_bind(id)
            .push(", json_extract(value, '$.u'), ")
            .push_bind(room)
            .push(", ");
        push_stream(&mut q, id);
        q.push(", ")
            .push_bind(a.push_thread)
            .push(", json_extract(value, '$.h'), json_extract(value, '$.a'), ")
            .push_bind(a.now)
            .push(" FROM json_each(")
            .push_bind(push_json.clone())
            .push(");\n");
    }
    // The answer: the stream position, then once more per notified user who has pushers.
    q.push("SELECT ");
    push_stream(&mut q, id);
    q.push(", NULL UNION ALL SELECT ");
    push_stream(&mut q, id);
    q.push(", user_id FROM (SELECT DISTINCT user_id FROM pushers WHERE user_id IN (SELECT json_extract(value, '$.u') FROM json_each(")
        .push_bind(push_json)
        .push(")));\nCOMMIT;");
    let rows: sqlx::Result<Vec<(i64, Option<String>)>> = q.build_query_as().fetch_all(&mut *conn).await;
    match rows {
        Ok(rows) => {
            let stream = rows.first().map(|r| r.0).ok_or_else(|| sqlx::Error::Protocol("append returned no stream position".into()))?;
            Ok(Appended { stream, users_with_pushers: rows.into_iter().filter_map(|r| r.1).collect() })
        }
        Err(err) => {
            // A failed statement leaves the transaction open on this connection.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(err)
        }
    }
}

/// The stream position the event got, as an SQL expression.
fn push_stream(q: &mut QueryBuilder<Sqlite>, event_id: &str) {
    q.push("(SELECT stream_ordering FROM events WHERE event_id = ").push_bind(event_id).push(")");
}
