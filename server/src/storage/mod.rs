//! Every SQL statement of the server lives under this module, one file per aggregate.
//!
//! `Db` is a reader pool plus a one-connection writer pool over one SQLite file in WAL mode, so
//! writes are serialised in the process (no SQLITE_BUSY storms) while reads run in parallel.
//! Storage functions take an executor so a service can compose several into one transaction.
//! Storage never calls services and never sees HTTP types.

pub mod account_data;
pub mod admin_key;
pub mod admin_tasks;
pub mod append;
pub mod backup;
pub mod delayed_events;
pub mod device_keys;
pub mod devices;
pub mod events;
pub mod federation;
pub mod filters;
pub mod health;
pub mod key_backup;
pub mod media;
pub mod media_files;
pub mod openid;
pub mod purge;
pub mod push_actions;
pub mod pushers;
pub mod ratelimit_override;
pub mod receipts;
pub mod registration_tokens;
pub mod relations;
pub mod remote_devices;
pub mod reports;
pub mod rooms;
pub mod search;
pub mod server_keys;
pub mod settings;
pub mod sliding_sync;
pub mod state;
pub mod stream_marks;
pub mod to_device;
pub mod tokens;
pub mod users;

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// The schema generation this binary writes. An older binary refuses a database whose
/// `schema_compat` is higher than what it understands.
pub const SCHEMA_COMPAT: i64 = 1;

/// WAL frames (pages, 4 KiB each) past which the checkpointer makes the WAL start over: SQLite's
/// own automatic checkpoint threshold.
const WAL_RESTART_FRAMES: i64 = 1000;

/// WAL frames past which the writer checkpoints inside a commit after all: four times the
/// checkpointer's threshold, reached only when the checkpointer cannot keep up.
const WRITER_CHECKPOINT_FRAMES: i64 = 4 * WAL_RESTART_FRAMES;

/// Reader connections in the pool.
const READERS: u32 = 4;

#[cfg(test)]
mod tests {
    /// A database at `path` made by an older Hearth: the migrations up to `version` only.
    async fn older_database(path: &std::path::Path, version: i64) -> sqlx::SqliteConnection {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let options =
            sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://").unwrap().filename(path).create_if_missing(true);
        let mut conn = options.connect().await.unwrap();
        sqlx::migrate!("../migrations").run_to(version, &mut conn).await.unwrap();
        conn
    }

    /// The statistics `optimize` writes when a small server stops (10 users in 20 rooms) must
    /// not turn the queries every /sync runs into scans of whole tables: they once did, and an
    /// initial sync took 44 ms instead of 3 after the first restart.
    #[tokio::test]
    async fn statistics_of_a_small_server_keep_the_sync_queries_on_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::open(&dir.path().join("h.db")).await.unwrap();
        let mut conn = db.write.acquire().await.unwrap();
        sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
        sqlx::query(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
             ('events', 'events_room_stream', '720 36 1'), ('events', 'sqlite_autoindex_events_1', '720 1'),
             ('events', 'events_room_state', '320 16 3 1'), ('memberships', 'memberships_user', '200 20 20'),
             ('memberships', 'memberships', '200 10 1')",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        // Loads the statistics into the connection, as a start after `optimize` does.
        sqlx::query("ANALYZE sqlite_schema").execute(&mut *conn).await.unwrap();
        for sql in [
            super::events::latest_per_room_sql(false, 11),
            super::events::latest_per_room_sql(true, 11),
            super::rooms::SUMMARIES_MANY.to_owned(),
            super::rooms::CO_MEMBERS.to_owned(),
            super::push_actions::UNREAD_MANY.to_owned(),
            super::push_actions::list_sql(20),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            let scans: Vec<&str> = plan
                .iter()
                .map(|r| r.3.as_str())
                .filter(|d| d.starts_with("SCAN ") && !d.contains("VIRTUAL TABLE"))
                // The queries' own intermediate results (WITH tables, subqueries), not stored tables.
                .filter(|d| {
                    !["pos", "me", "main", "hits", "n", "h"].iter().any(|cte| d.strip_prefix("SCAN ") == Some(*cte))
                        && !d.starts_with("SCAN (subquery-")
                })
                .collect();
            assert!(scans.is_empty(), "{scans:?} in the plan of {sql}");
            // Heroes are the first entries of an index, not a sort of each room's members.
            if sql == super::rooms::SUMMARIES_MANY {
                let sorts: Vec<&str> =
                    plan.iter().map(|r| r.3.as_str()).filter(|d| d.contains("TEMP B-TREE")).collect();
                assert!(sorts.is_empty(), "{sorts:?} in the plan of {sql}: {plan:?}");
            }
        }
        drop(conn);
        db.close().await;
    }

    /// The workspace's `.cargo/config.toml` builds SQLite without its memory statistics, whose
    /// process-wide mutex every SQLite allocation and free took (tokio's threads freeing rows
    /// queued on it behind the connections' threads). A build that misses the setting, for
    /// example one run from outside the workspace, would lose that without any other sign.
    #[tokio::test]
    async fn sqlite_is_built_without_the_memory_statistics_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::open(&dir.path().join("h.db")).await.unwrap();
        let options: Vec<(String,)> =
            sqlx::query_as("SELECT compile_options FROM pragma_compile_options").fetch_all(&db.read).await.unwrap();
        assert!(options.iter().any(|(o,)| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        db.close().await;
    }

    #[tokio::test]
    async fn a_database_from_a_newer_hearth_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let db = super::Db::open(&path).await.unwrap();
        sqlx::query("UPDATE server_meta SET value = '99' WHERE key = 'schema_compat'")
            .execute(&db.write)
            .await
            .unwrap();
        db.close().await;
        let e = super::Db::open(&path).await.unwrap_err().to_string();
        assert!(e.contains("newer Hearth"), "{e}");
    }

    /// Push actions stored before the compact table are moved into it: the default rules'
    /// actions become flags, any other actions stay whole, users and rooms get their numbers.
    #[tokio::test]
    async fn push_actions_of_an_older_database_are_kept_in_the_compact_table() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = older_database(&path, 20261207000036).await;
        let ring = r#"["notify",{"set_tweak":"sound","value":"ring"}]"#;
        for (user, event, stream, highlight, actions) in [
            ("@a:h", "$1", 1, 0, r#"["notify"]"#),
            ("@b:h", "$1", 1, 1, r#"["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]"#),
            ("@a:h", "$2", 2, 0, ring),
        ] {
            sqlx::query(
                "INSERT INTO event_push_actions (event_id, user_id, room_id, stream_ordering, thread_id, highlight, actions, ts)
                 VALUES (?, ?, '!r:h', ?, '', ?, ?, 0)",
            )
            .bind(event)
            .bind(user)
            .bind(stream)
            .bind(highlight)
            .bind(actions)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();
        let db = super::Db::open(&path).await.unwrap();
        let rows: Vec<(String, String, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT u.user_id, r.room_id, a.stream_ordering, a.flags, a.actions FROM push_actions a
             JOIN user_nids u ON u.nid = a.user_nid JOIN room_nids r ON r.nid = a.room_nid ORDER BY 3, 1",
        )
        .fetch_all(&db.read)
        .await
        .unwrap();
        let room = "!r:h".to_owned();
        assert_eq!(
            rows,
            vec![
                ("@a:h".to_owned(), room.clone(), 1, 0, None),
                ("@b:h".to_owned(), room.clone(), 1, 3, None),
                ("@a:h".to_owned(), room, 2, 0, Some(ring.to_owned())),
            ]
        );
        db.close().await;
    }

    /// An older database's local members get a span from their current join, so that the
    /// rooms' push rows count for them; remote members and those who left get none.
    #[tokio::test]
    async fn local_members_of_an_older_database_get_their_push_spans() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = older_database(&path, 20261209000039).await;
        sqlx::query(
            "INSERT INTO users (user_id, localpart, created_ts) VALUES ('@a:h', 'a', 0), ('@b:h', 'b', 0);
             INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ('!r:h', '12', '@a:h', 0);
             INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering) VALUES
                 ('!r:h', '@a:h', 'join', '$j', 7), ('!r:h', '@b:h', 'leave', '$l', 8),
                 ('!r:h', '@c:elsewhere', 'join', '$c', 9)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let db = super::Db::open(&path).await.unwrap();
        let spans: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT u.user_id, r.room_id, s.from_stream, s.to_stream FROM push_spans s
             JOIN user_nids u ON u.nid = s.user_nid JOIN room_nids r ON r.nid = s.room_nid",
        )
        .fetch_all(&db.read)
        .await
        .unwrap();
        assert_eq!(spans, vec![("@a:h".to_owned(), "!r:h".to_owned(), 7, None)]);
        db.close().await;
    }

    /// The search index of an older database (its own copy of each event's text, room and ID)
    /// is carried over to the index keyed by position: what was findable stays findable, in
    /// the field it came from, and forgetting a redacted event's text still works.
    #[tokio::test]
    async fn search_entries_of_an_older_database_stay_findable() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = older_database(&path, 20261208000038).await;
        sqlx::query("INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ('!r:h', '12', '@a:h', 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        for (stream, id, kind, key, text) in [
            (5, "$m", "m.room.message", "content.body", "pancakes for breakfast"),
            (6, "$n", "m.room.name", "content.name", "Breakfast club"),
            (7, "$t", "m.room.topic", "content.topic", "waffles only"),
        ] {
            sqlx::query(
                "INSERT INTO events (stream_ordering, event_id, room_id, event_type, sender, origin_server_ts, depth, pdu)
                 VALUES (?, ?, '!r:h', ?, '@a:h', 0, 1, '{}')",
            )
            .bind(stream)
            .bind(id)
            .bind(kind)
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO events_fts (body, event_id, room_id, stream_ordering, search_key) VALUES (?, ?, '!r:h', ?, ?)",
            )
            .bind(text)
            .bind(id)
            .bind(stream)
            .bind(key)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();
        let db = super::Db::open(&path).await.unwrap();
        let rooms = ["!r:h".to_owned()];
        let find = |term: &'static str, types: &'static [&'static str]| {
            let db = db.clone();
            let rooms = rooms.clone();
            async move {
                let hits = super::search::search(&db.read, term, &rooms, types, false, 0, 10).await.unwrap();
                hits.into_iter().map(|(id, room, _)| (id, room)).collect::<Vec<_>>()
            }
        };
        let all: &[&str] = &["m.room.message", "m.room.name", "m.room.topic"];
        let breakfast = vec![("$n".to_owned(), "!r:h".to_owned()), ("$m".to_owned(), "!r:h".to_owned())];
        assert_eq!(find("breakfast", all).await, breakfast, "newest first");
        assert_eq!(find("breakfast", &["m.room.name"]).await, breakfast[..1]);
        assert_eq!(find("waffles", all).await, [("$t".to_owned(), "!r:h".to_owned())]);
        super::search::forget(&db.write, "$m").await.unwrap();
        assert_eq!(find("pancakes", all).await, []);
        assert_eq!(find("breakfast", all).await, breakfast[..1]);
        db.close().await;
    }

    /// A new database in `dir` with the given rooms (and nothing in them).
    async fn db_with_rooms(dir: &tempfile::TempDir, rooms: &[&str]) -> super::Db {
        let db = super::Db::open(&dir.path().join("h.db")).await.unwrap();
        for room in rooms {
            sqlx::query("INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (?, '12', '@u:h', 0)")
                .bind(room)
                .execute(&db.write)
                .await
                .unwrap();
        }
        db
    }

    /// Each room's latest event and relation as a start reads them (from the room's row) and
    /// as the tables say (the largest position of the room's events and relations).
    async fn heads_read_and_computed(db: &super::Db) -> [Vec<(String, i64)>; 4] {
        let sorted = |mut v: Vec<(String, i64)>| {
            v.sort();
            v
        };
        let computed = |table: &'static str| {
            let db = db.clone();
            async move {
                let sql =
                    format!("SELECT room_id, MAX(stream_ordering) FROM {table} GROUP BY room_id ORDER BY room_id");
                sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql)).fetch_all(&db.read).await.unwrap()
            }
        };
        [
            sorted(super::events::room_heads(&db.read).await.unwrap()),
            computed("events").await,
            sorted(super::relations::room_heads(&db.read).await.unwrap()),
            computed("event_relations").await,
        ]
    }

    /// An event appended as `storage::append` writes it: at `position` (None: the next one),
    /// relating to another when `relation`, with `outliers` stored before it.
    fn appended(
        id: &str,
        room: &str,
        position: Option<i64>,
        relation: bool,
        outliers: &[&str],
    ) -> super::append::Append {
        use super::append::{Append, NewEvent, NewOutlier};
        Append {
            new_room: None,
            event: NewEvent {
                event_id: id.to_owned(),
                room_id: room.to_owned(),
                event_type: "m.room.message".to_owned(),
                state_key: None,
                sender: "@u:h".to_owned(),
                origin_server_ts: 0,
                depth: 1,
                pdu: "{}".to_owned(),
                rejected: false,
                soft_failed: false,
                outlier: false,
                state_group: None,
                resolved_state_group: None,
                extremity: true,
                txn: None,
                prev_events: vec![],
                auth_events: vec![],
                state_before_group: None,
                stream_ordering: position,
                relay: false,
            },
            outliers: outliers
                .iter()
                .map(|o| NewOutlier {
                    event_id: o.to_string(),
                    event_type: "m.room.member".to_owned(),
                    state_key: Some("@u:h".to_owned()),
                    sender: "@u:h".to_owned(),
                    origin_server_ts: 0,
                    depth: 1,
                    pdu: "{}".to_owned(),
                    rejected: false,
                    auth_events: vec![],
                })
                .collect(),
            reset_extremities: false,
            state_groups: vec![],
            current: Default::default(),
            memberships: vec![],
            search: None,
            relation: relation.then(|| ("$parent".to_owned(), "m.thread".to_owned())),
            push: Default::default(),
        }
    }

    /// The heads kept in the rooms' rows follow every way events and relations are written:
    /// appended (several in one transaction), backfilled below everything, outliers stored
    /// with an event, an outlier placed in the timeline later, and a room purged.
    #[tokio::test]
    async fn room_heads_kept_in_rooms_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rooms(&dir, &["!a:h", "!b:h", "!c:h"]).await;
        let check = |step: &'static str| {
            let db = db.clone();
            async move {
                let [read, events, read_relations, relations] = heads_read_and_computed(&db).await;
                assert_eq!(read, events, "events after: {step}");
                assert_eq!(read_relations, relations, "relations after: {step}");
                (read, read_relations)
            }
        };
        let append = |events: Vec<super::append::Append>| {
            let db = db.clone();
            async move {
                let mut conn = db.write.acquire().await.unwrap();
                let refs: Vec<&super::append::Append> = events.iter().collect();
                super::append::append_all(&mut conn, &refs).await.unwrap()
            }
        };
        let pairs = |list: &[(&str, i64)]| list.iter().map(|(r, p)| (r.to_string(), *p)).collect::<Vec<_>>();
        assert_eq!(check("nothing").await, (vec![], vec![]));

        append(vec![appended("$1", "!a:h", None, false, &[]), appended("$2", "!b:h", None, true, &[])]).await;
        append(vec![appended("$3", "!a:h", None, true, &[])]).await;
        // Backfilled history sits below every position and moves no head; in a room with
        // nothing else it is the head.
        append(vec![appended("$-5", "!a:h", Some(-5), true, &[]), appended("$-6", "!c:h", Some(-6), false, &[])]).await;
        assert_eq!(
            check("appended and backfilled").await,
            (pairs(&[("!a:h", 3), ("!b:h", 2), ("!c:h", -6)]), pairs(&[("!a:h", 3), ("!b:h", 2)]))
        );

        // Outliers come before the event that brought them, backfilled or not.
        append(vec![appended("$-7", "!c:h", Some(-7), false, &["$out1"])]).await;
        assert_eq!(check("an outlier").await.0, pairs(&[("!a:h", 3), ("!b:h", 2), ("!c:h", 4)]));
        append(vec![appended("$6", "!b:h", None, true, &["$out2"])]).await;
        assert_eq!(
            check("an outlier and its event").await,
            (pairs(&[("!a:h", 3), ("!b:h", 6), ("!c:h", 4)]), pairs(&[("!a:h", 3), ("!b:h", 6)]))
        );
        // Placed in the timeline: below everything (backfill), then above.
        super::events::place_outlier(&db.write, "$out1", -8, None).await.unwrap();
        assert_eq!(check("an outlier placed below").await.0, pairs(&[("!a:h", 3), ("!b:h", 6), ("!c:h", -6)]));
        sqlx::query("UPDATE events SET outlier = 1 WHERE event_id = '$out1'").execute(&db.write).await.unwrap();
        super::events::place_outlier(&db.write, "$out1", 10, None).await.unwrap();
        assert_eq!(check("an outlier placed above").await.0, pairs(&[("!a:h", 3), ("!b:h", 6), ("!c:h", 10)]));
        // Not an outlier (any more): nothing moves.
        super::events::place_outlier(&db.write, "$3", 20, None).await.unwrap();
        assert_eq!(check("not an outlier").await.0, pairs(&[("!a:h", 3), ("!b:h", 6), ("!c:h", 10)]));

        let mut conn = db.write.acquire().await.unwrap();
        let (events, _) = super::purge::room(&mut conn, "!b:h", ":h").await.unwrap();
        drop(conn);
        assert_eq!(events.len(), 3);
        assert_eq!(check("a room purged").await, (pairs(&[("!a:h", 3), ("!c:h", 10)]), pairs(&[("!a:h", 3)])));
        db.close().await;
    }

    /// An older database gets its rooms' heads from its events and relations, and gets them
    /// again after an older binary wrote to it.
    #[tokio::test]
    async fn rooms_of_an_older_database_get_their_heads() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut conn = older_database(&path, 20261210000040).await;
        sqlx::query(
            "INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES
                 ('!a:h', '12', '@a:h', 0), ('!b:h', '12', '@a:h', 0), ('!c:h', '12', '@a:h', 0);
             INSERT INTO events (stream_ordering, event_id, room_id, event_type, sender, origin_server_ts, depth, pdu)
             VALUES (1, '$1', '!a:h', 'x', '@a:h', 0, 1, '{}'), (2, '$2', '!b:h', 'x', '@a:h', 0, 1, '{}'),
                    (3, '$3', '!a:h', 'x', '@a:h', 0, 2, '{}'), (-1, '$-1', '!b:h', 'x', '@a:h', 0, 1, '{}');
             INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, event_type, stream_ordering)
             VALUES ('$3', '$1', 'm.annotation', '!a:h', '@a:h', 'm.reaction', 3)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let db = super::Db::open(&path).await.unwrap();
        let [read, events, read_relations, relations] = heads_read_and_computed(&db).await;
        assert_eq!(read, vec![("!a:h".to_owned(), 3), ("!b:h".to_owned(), 2)]);
        assert_eq!(read, events);
        assert_eq!(read_relations, vec![("!a:h".to_owned(), 3)]);
        assert_eq!(read_relations, relations);
        // An older binary (which does not keep the heads) goes on writing to the database: the
        // next start finds them again.
        sqlx::query(
            "INSERT INTO events (stream_ordering, event_id, room_id, event_type, sender, origin_server_ts, depth, pdu)
             VALUES (4, '$4', '!c:h', 'x', '@a:h', 0, 1, '{}'), (5, '$5', '!b:h', 'x', '@a:h', 0, 3, '{}');
             INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, sender, event_type, stream_ordering)
             VALUES ('$5', '$2', 'm.annotation', '!b:h', '@a:h', 'm.reaction', 5)",
        )
        .execute(&db.write)
        .await
        .unwrap();
        db.close().await;
        let db = super::Db::open(&path).await.unwrap();
        let [read, events, read_relations, relations] = heads_read_and_computed(&db).await;
        assert_eq!(read, vec![("!a:h".to_owned(), 3), ("!b:h".to_owned(), 5), ("!c:h".to_owned(), 4)]);
        assert_eq!(read, events);
        assert_eq!(read_relations, vec![("!a:h".to_owned(), 3), ("!b:h".to_owned(), 5)]);
        assert_eq!(read_relations, relations);
        // Nothing to find again: nothing is written.
        assert!(!super::events::repair_room_heads(&db.write).await.unwrap());
        db.close().await;
    }

    /// The first page of each room's timeline: its newest events up to the position asked,
    /// never rejected, soft-failed or outlier events, and all of them when a room has fewer.
    #[tokio::test]
    async fn latest_per_room_gives_each_rooms_newest_shown_events() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rooms(&dir, &["!a:h", "!b:h", "!c:h"]).await;
        // (position, room, rejected, soft-failed, outlier); room c has no events.
        let events = [
            (1, "!a:h", 0, 0, 0),
            (2, "!b:h", 0, 0, 0),
            (3, "!a:h", 0, 0, 0),
            (4, "!a:h", 1, 0, 0),
            (5, "!b:h", 0, 0, 0),
            (6, "!a:h", 0, 1, 0),
            (7, "!a:h", 0, 0, 1),
            (8, "!a:h", 0, 0, 0),
            (9, "!b:h", 0, 0, 0),
            (10, "!a:h", 0, 0, 0),
        ];
        for (pos, room, rejected, soft_failed, outlier) in events {
            sqlx::query(
                "INSERT INTO events (stream_ordering, event_id, room_id, event_type, sender, origin_server_ts, depth, pdu,
                                     rejected, soft_failed, outlier)
                 VALUES (?1, '$' || ?1, ?2, 'm.room.message', '@u:h', 0, 1, '{}', ?3, ?4, ?5)",
            )
            .bind(pos)
            .bind(room)
            .bind(rejected)
            .bind(soft_failed)
            .bind(outlier)
            .execute(&db.write)
            .await
            .unwrap();
        }
        let latest = |upto: i64, per_room: i64| {
            let db = db.clone();
            async move {
                let rooms = ["!a:h", "!b:h", "!c:h"];
                let rows = super::events::latest_per_room(&db.read, &rooms, upto, per_room).await.unwrap();
                // The IDs alone are those of the same events.
                let mut ids = super::events::latest_ids_per_room(&db.read, &rooms, upto, per_room).await.unwrap();
                ids.sort();
                let mut row_ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
                row_ids.sort();
                assert_eq!(ids, row_ids);
                rows.into_iter().map(|r| (r.room_id, r.stream_ordering)).collect::<Vec<_>>()
            }
        };
        let rows = |list: &[(&str, i64)]| list.iter().map(|(r, p)| (r.to_string(), *p)).collect::<Vec<_>>();
        assert_eq!(latest(10, 2).await, rows(&[("!a:h", 10), ("!a:h", 8), ("!b:h", 9), ("!b:h", 5)]));
        assert_eq!(latest(9, 2).await, rows(&[("!a:h", 8), ("!a:h", 3), ("!b:h", 9), ("!b:h", 5)]));
        assert_eq!(
            latest(10, 10).await,
            rows(&[("!a:h", 10), ("!a:h", 8), ("!a:h", 3), ("!a:h", 1), ("!b:h", 9), ("!b:h", 5), ("!b:h", 2)])
        );
        assert_eq!(latest(10, 1).await, rows(&[("!a:h", 10), ("!b:h", 9)]));
        assert_eq!(latest(10, 0).await, rows(&[]));
        db.close().await;
    }

    /// Events read many at once (one text of all their rows) come back as the same rows read
    /// one by one: strings that need escaping in JSON, and the framing's own characters, in
    /// every text column, NULLs, a redacted copy, and none at all for an empty list or unknown
    /// IDs.
    #[tokio::test]
    async fn events_read_many_at_once_are_the_rows_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let room = r#"!q"\uote:h"#;
        let db = db_with_rooms(&dir, &[room]).await;
        // (position, event ID, state key, sender, PDU, redacted copy, state group, transaction)
        let events = [
            (1, "$plain", None, "@u:h", r#"{"content":{"body":"hi"},"type":"m.room.message"}"#, None, None, None),
            (
                2,
                r#"$quote"back\slash"#,
                Some("tab\t \"q\" é 🔥 \u{1}"),
                r#"@"odd\:h"#,
                r#"{"content":{"body":"a \"q\" \\ \n \u0001 é"},"state_key":"tab\t","type":"x"}"#,
                Some(r#"{"content":{},"type":"x","unsigned":{"redacted_because":{"b":"\""}}}"#),
                Some(7),
                Some(("DEV\"", "txn\\1")),
            ),
            (3, "$empty", Some(""), "@u:h", "{}", None, Some(9), None),
            // What the framed text is made of (lengths, `:`, `;`, `~`) inside the columns.
            (
                4,
                "$4:~;",
                Some("~"),
                "12;@u:h",
                r#"{"content":{"body":"3:~;~ 7: é"},"type":"x"}"#,
                Some("~"),
                None,
                Some(("~", ":")),
            ),
        ];
        for (pos, id, key, sender, pdu, redacted, group, txn) in events {
            sqlx::query(
                "INSERT INTO events (stream_ordering, event_id, room_id, event_type, state_key, sender, origin_server_ts,
                                     depth, pdu, redacted_json, state_group, txn_user_id, txn_device_id, txn_id)
                 VALUES (?, ?, ?, 'x', ?, ?, 0, 1, ?, ?, NULL, ?, ?, ?)",
            )
            .bind(pos)
            .bind(id)
            .bind(room)
            .bind(key)
            .bind(sender)
            .bind(pdu)
            .bind(redacted)
            .bind(txn.map(|_| sender))
            .bind(txn.map(|t| t.0))
            .bind(txn.map(|t| t.1))
            .execute(&db.write)
            .await
            .unwrap();
            // State groups are rows of their own; the column is set once one exists.
            if let Some(group) = group {
                sqlx::query("INSERT INTO state_groups (id, room_id, prev_group, chain_len) VALUES (?, ?, NULL, 0)")
                    .bind(group)
                    .bind(room)
                    .execute(&db.write)
                    .await
                    .unwrap();
                sqlx::query("UPDATE events SET state_group = ? WHERE stream_ordering = ?")
                    .bind(group)
                    .bind(pos)
                    .execute(&db.write)
                    .await
                    .unwrap();
            }
        }
        let debug = |rows: Vec<super::events::EventRow>| {
            let mut rows: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
            rows.sort();
            rows
        };
        let mut one_by_one = Vec::new();
        for (_, id, ..) in events {
            one_by_one.push(super::events::get(&db.read, id).await.unwrap().expect("stored"));
        }
        assert_eq!(one_by_one[1].redacted_json.as_deref(), events[1].5, "the one-by-one read is the stored row");
        assert_eq!(one_by_one[1].state_key.as_deref(), Some("tab\t \"q\" é 🔥 \u{1}"));
        let ids: Vec<String> = events.iter().map(|e| e.1.to_owned()).chain(["$unknown".to_owned()]).collect();
        let many = super::events::get_many(&db.read, &ids).await.unwrap();
        assert_eq!(debug(many), debug(one_by_one.clone()));
        let latest = super::events::latest_per_room(&db.read, &[room], 10, 10).await.unwrap();
        assert_eq!(debug(latest), debug(one_by_one));
        assert!(super::events::get_many(&db.read, &["$unknown".to_owned()]).await.unwrap().is_empty());
        assert!(super::events::get_many(&db.read, &[]).await.unwrap().is_empty());
        db.close().await;
    }

    /// Room summaries counted by SQLite equal those counted from the rooms' member lists: the
    /// viewer is never a hero; only joined and invited members count; at most five heroes, in
    /// the order their membership events came (not by user ID); members who left or were banned
    /// only when no one else is joined or invited; a room without members has none.
    #[tokio::test]
    async fn member_summaries_read_at_once_are_counted_from_the_member_lists() {
        let dir = tempfile::tempdir().unwrap();
        // Room IDs go through a JSON text: one with quotes, escapes and more than ASCII.
        let rooms = ["!a:h", "!b:h", r#"!q"\uote\t é 🔥:h"#, "!gone:h", "!empty:h"];
        let db = db_with_rooms(&dir, &rooms).await;
        let mut members: Vec<(&str, String, &str)> = Vec::new();
        // Room a: the viewer, eight others joined or invited (more than five heroes), in the
        // reverse order of their user IDs, and members who left or were banned.
        members.push((rooms[0], "@me:h".into(), "join"));
        members.push((rooms[0], "@a-left:h".into(), "leave"));
        for i in 0..8 {
            members.push((rooms[0], format!("@p{}:h", 8 - i), if i % 3 == 0 { "invite" } else { "join" }));
        }
        members.push((rooms[0], "@a-banned:h".into(), "ban"));
        members.push((rooms[0], r#"@"odd\:h"#.into(), "join"));
        // Room b: the viewer invited, one other joined, one knocking.
        members.push((rooms[1], "@me:h".into(), "invite"));
        members.push((rooms[1], "@z:h".into(), "join"));
        members.push((rooms[1], "@k:h".into(), "knock"));
        // Room quiet: only the viewer.
        members.push((rooms[2], "@me:h".into(), "join"));
        // Room gone: everyone else left or was banned.
        members.push((rooms[3], "@me:h".into(), "join"));
        members.push((rooms[3], "@y-left:h".into(), "leave"));
        members.push((rooms[3], "@k:h".into(), "knock"));
        members.push((rooms[3], "@x-banned:h".into(), "ban"));
        for (position, (room, user, membership)) in members.iter().enumerate() {
            sqlx::query(
                "INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering) VALUES (?, ?, ?, '$e', ?)",
            )
            .bind(room)
            .bind(user)
            .bind(membership)
            .bind(position as i64)
            .execute(&db.write)
            .await
            .unwrap();
        }
        let got: std::collections::HashMap<String, super::rooms::MemberSummary> =
            super::rooms::summaries_many(&db.read, &rooms, "@me:h").await.unwrap().into_iter().collect();
        assert_eq!(got.len(), rooms.len());
        for room in rooms {
            let list: Vec<&(&str, String, &str)> =
                members.iter().filter(|(r, u, _)| *r == room && u != "@me:h").collect();
            let count = |m: &str| members.iter().filter(|(r, _, x)| *r == room && *x == m).count() as i64;
            let of = |kinds: [&str; 2]| -> Vec<String> {
                list.iter().filter(|(_, _, m)| kinds.contains(m)).map(|(_, u, _)| u.clone()).take(5).collect()
            };
            let mut heroes = of(["join", "invite"]);
            if heroes.is_empty() {
                heroes = of(["leave", "ban"]);
            }
            let want = super::rooms::MemberSummary { joined: count("join"), invited: count("invite"), heroes };
            assert_eq!(got[room], want, "{room}");
        }
        assert_eq!(got["!a:h"].heroes, ["@p8:h", "@p7:h", "@p6:h", "@p5:h", "@p4:h"]);
        assert_eq!((got["!a:h"].joined, got["!a:h"].invited), (7, 3));
        assert_eq!(got["!b:h"].heroes, vec!["@z:h".to_owned()]);
        assert_eq!(got["!gone:h"].heroes, ["@y-left:h", "@x-banned:h"]);
        assert_eq!(got["!empty:h"], super::rooms::MemberSummary::default());
        assert!(super::rooms::summaries_many(&db.read, &[], "@me:h").await.unwrap().is_empty());
        db.close().await;
    }

    /// A backup's snapshot is a reader that holds its view for seconds. The checkpointer used
    /// to wait for it with the write lock held (a RESTART), and every send waited as long.
    #[tokio::test]
    async fn writes_go_on_while_a_long_reader_holds_the_wal() {
        use sqlx::{ConnectOptions, Connection};
        use std::{str::FromStr, time::Duration};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let db = super::Db::open(&path).await.unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB)").execute(&db.write).await.unwrap();
        let mut reader =
            sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://").unwrap().filename(&path).connect().await.unwrap();
        let mut snapshot = reader.begin().await.unwrap();
        sqlx::query("SELECT count(*) FROM server_meta").fetch_one(&mut *snapshot).await.unwrap();
        // More WAL than the checkpointer lets grow before it starts the WAL over.
        for _ in 0..(super::WAL_RESTART_FRAMES + 100) {
            sqlx::query("INSERT INTO filler VALUES (zeroblob(4000))").execute(&db.write).await.unwrap();
        }
        let write = async {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("INSERT INTO filler VALUES (1)").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        };
        // Before the fix both took the connection's busy timeout, ten seconds.
        let both = tokio::time::timeout(Duration::from_secs(3), async {
            tokio::join!(async { db.checkpoint().await.unwrap() }, write)
        });
        assert!(both.await.is_ok(), "a write waited for the long reader");
        snapshot.rollback().await.unwrap();
        db.close().await;
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    /// Many connections, read-only by convention.
    pub read: SqlitePool,
    /// Exactly one connection: every write goes here.
    pub write: SqlitePool,
    /// One connection that folds the WAL back into the database file (`checkpoint`), so a
    /// commit never does that work: SQLite's automatic checkpoint runs inside the COMMIT that
    /// crosses its threshold, and that commit took 3 to 5 ms instead of about 1.
    checkpointer: SqlitePool,
    /// Seconds each write waited for the write connection (the metrics' database pool wait).
    pub write_wait: prometheus::Histogram,
}

/// The write wait's buckets, seconds: from an idle writer to a queue behind a long migration.
const WAIT_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

impl Db {
    /// Opens (creating if needed) `path`, applies migrations and checks schema compatibility.
    pub async fn open(path: &Path) -> anyhow::Result<Db> {
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction is on disk before COMMIT returns, so an answered write
            // survives kill -9 and power loss (the kill -9 test proves the former).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .optimize_on_close(true, None);
        // No ping before handing out a connection: for SQLite it is a round trip to the
        // connection's worker thread per query, and a local file connection does not go stale.
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // Checkpoints are the checkpointer's job (see `checkpointer`); the writer only does
            // one itself when the WAL outgrew what the checkpointer keeps up with (a machine
            // too busy to run it), so the WAL stays bounded. A WAL that grew under a burst is
            // cut back to 4 MiB when it starts over.
            .connect_with(
                base.clone()
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_FRAMES.to_string())
                    .pragma("journal_size_limit", "4194304"),
            )
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        // Refuse a newer database before migrating, with a message a person can act on.
        check_compat(&write).await?;
        let mut migrator = sqlx::migrate!("../migrations");
        // A newer binary's migrations may be applied already; `schema_compat` decides whether
        // this binary can still use the database, not the list of migrations.
        migrator.set_ignore_missing(true);
        let pending = pending_migrations(&write, &migrator).await?;
        // Each migration is a transaction of its own: one that fails would leave the ones
        // before it applied. An upgrade is all or nothing instead: a copy taken first is put
        // back when any migration fails.
        let safety = match pending.first() {
            Some(first) if pending.len() < migrator.iter().count() => Some(safety_copy(&write, path, first).await?),
            _ => None,
        };
        if let Err(e) = migrator.run(&write).await {
            write.close().await;
            let Some(copy) = safety else {
                return Err(anyhow::Error::from(e).context("applying database migrations"));
            };
            put_back(path, &copy).with_context(|| {
                format!(
                    "applying database migrations failed ({e}), and putting back the copy {} failed too",
                    copy.display()
                )
            })?;
            anyhow::bail!(
                "upgrading the database failed ({e}); it was put back as it was before this upgrade, and this Hearth cannot use it. Report this, and go on with the version used before"
            );
        }
        if let Some(copy) = safety {
            let _ = std::fs::remove_file(copy);
        }
        record_compat(&write).await?;
        if events::repair_room_heads(&write).await? {
            tracing::warn!(
                "rooms' latest positions were behind their events (an older Hearth wrote to this database); found them again"
            );
        }
        // Migrations read every table; give those pages back rather than keep them resident.
        sqlx::query("PRAGMA shrink_memory").execute(&write).await?;
        // Readers: a few connections suffice (queries are CPU-bound and the machine is a home
        // computer), each with a 1 MiB page cache: the OS caches the file anyway, and every
        // connection's cache is resident memory.
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(READERS)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().read_only(true).pragma("cache_size", "-1024"))
            .await
            .with_context(|| format!("opening database {} for reading", path.display()))?;
        let checkpointer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            // A RESTART waits for readers while it holds the write lock (see `checkpoint`): it
            // gives up after a moment rather than pause the server's writes.
            .connect_with(base.busy_timeout(Duration::from_millis(100)).pragma("cache_size", "-256"))
            .await
            .with_context(|| format!("opening database {} for checkpoints", path.display()))?;
        let write_wait = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "hearth_db_write_wait_seconds",
                "Time a write waited for the database's one write connection",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        Ok(Db { read, write, checkpointer, write_wait })
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`). A deferred
    /// transaction that reads first and writes later cannot wait for the lock when it needs it:
    /// SQLite answers SQLITE_BUSY at once while a RESTART checkpoint or another process (say,
    /// `hearth register-user`) holds it, and the request failed with 500.
    pub async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        let started = std::time::Instant::now();
        let tx = self.write.begin_with("BEGIN IMMEDIATE").await;
        self.write_wait.observe(started.elapsed().as_secs_f64());
        tx
    }

    /// The write connection, for a writer that runs several transactions (the event writer),
    /// its wait counted like `begin_write`'s.
    pub async fn acquire_write(&self) -> sqlx::Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        let started = std::time::Instant::now();
        let conn = self.write.acquire().await;
        self.write_wait.observe(started.elapsed().as_secs_f64());
        conn
    }

    /// Copies committed WAL frames into the database file without blocking writers or readers
    /// (PASSIVE). Run by a background task, not by commits. The WAL only starts over from its
    /// beginning when a write begins right after everything was copied, which a steady stream
    /// of writes prevents; past `WAL_RESTART_FRAMES` a RESTART checkpoint makes the next write
    /// start over, pausing writes for what is left to copy (little: the PASSIVE pass did the rest).
    ///
    /// Not while a reader holds an older snapshot (the PASSIVE pass could not copy every frame):
    /// a RESTART waits for that reader to finish, and blocks every write while it waits. A
    /// backup's snapshot is such a reader for seconds, and sends during it stalled for as long
    /// (docs/benchmarks-backup.md).
    pub async fn checkpoint(&self) -> sqlx::Result<()> {
        let (_, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&self.checkpointer).await?;
        if frames > WAL_RESTART_FRAMES && copied == frames {
            sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&self.checkpointer).await?;
        }
        Ok(())
    }

    /// Rewrites the database file without its free pages (`VACUUM`). It holds the write lock
    /// throughout, so it is only run with the server stopped (`hearth compact`).
    pub async fn vacuum(&self) -> sqlx::Result<()> {
        sqlx::query("VACUUM").execute(&self.write).await?;
        Ok(())
    }

    /// Closes both pools: waits for the readers, folds the WAL back into the database file
    /// (so a clean stop leaves one self-contained file), then closes the writer.
    pub async fn close(&self) {
        self.read.close().await;
        self.checkpointer.close().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.write).await {
            tracing::warn!(error = %e, "could not checkpoint the database while stopping");
        }
        self.write.close().await;
    }
}

/// The migrations not applied yet to the database (all of them for a new one), by version.
async fn pending_migrations(pool: &SqlitePool, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<Vec<i64>> {
    let (has_table,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(pool)
            .await?;
    let applied: std::collections::HashSet<i64> = if has_table == 0 {
        Default::default()
    } else {
        sqlx::query_as::<_, (i64,)>("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(v,)| v)
            .collect()
    };
    Ok(migrator.iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect())
}

/// A consistent copy of the database beside it, taken before migrating (`VACUUM INTO`).
async fn safety_copy(pool: &SqlitePool, db: &Path, first: &i64) -> anyhow::Result<std::path::PathBuf> {
    let copy = db.with_extension("db.before-upgrade");
    // One left by an upgrade that was stopped: the database has moved on since.
    let _ = std::fs::remove_file(&copy);
    sqlx::query("VACUUM INTO ?").bind(copy.to_string_lossy().into_owned()).execute(pool).await.with_context(|| {
        format!(
            "copying the database to {} before upgrading it (from migration {first} on): is the disk full? An upgrade needs room for a copy of the database",
            copy.display()
        )
    })?;
    std::fs::File::open(&copy)?.sync_all()?;
    Ok(copy)
}

/// Replaces the database at `db` (closed) with `copy`.
fn put_back(db: &Path, copy: &Path) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(std::path::PathBuf::from(side)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(copy, db)?;
    #[cfg(unix)]
    if let Some(dir) = db.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn check_compat(pool: &SqlitePool) -> anyhow::Result<()> {
    let (has_meta,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'server_meta'")
            .fetch_one(pool)
            .await?;
    if has_meta == 0 {
        return Ok(()); // a new database
    }
    let stored: Option<(String,)> =
        sqlx::query_as("SELECT value FROM server_meta WHERE key = 'schema_compat'").fetch_optional(pool).await?;
    match stored.and_then(|(v,)| v.parse::<i64>().ok()) {
        Some(v) if v > SCHEMA_COMPAT => anyhow::bail!(
            "this database was written by a newer Hearth (schema {v}, this binary understands {SCHEMA_COMPAT}); install the newer version again or restore a backup"
        ),
        _ => Ok(()),
    }
}

async fn record_compat(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO server_meta (key, value) VALUES ('schema_compat', ?1) ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), ?1)")
        .bind(SCHEMA_COMPAT)
        .execute(pool)
        .await?;
    Ok(())
}

/// Milliseconds since the Unix epoch, the unit of every `_ts` column.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
