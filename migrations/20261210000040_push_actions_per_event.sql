-- Why: a message notifies nearly every member of a room in the same way, yet each notified
-- member got a row of their own, keyed by the member: in a room of 12 that was 11 rows on 11
-- leaf pages, a third of the WAL pages of each message's commit (a room of 200, about 200).
-- Now a message that notifies most members the same way is one row for the room; only the
-- members whose outcome differs (a mention that highlights, a muted room, someone who ignores
-- the sender, a rule of their own) keep a row of their own in `push_actions`, which wins over
-- the room's row. A member's own row with flag 4 says "not notified".

-- The actions most local members got for an event, as `push_actions` stores them.
CREATE TABLE push_room_actions (
    room_nid        INTEGER NOT NULL,
    stream_ordering INTEGER NOT NULL,
    thread_id       TEXT NOT NULL DEFAULT '',
    flags           INTEGER NOT NULL,
    actions         TEXT,
    PRIMARY KEY (room_nid, stream_ordering)
) STRICT, WITHOUT ROWID;
-- Unread counts read the rows in threads after the read position apart from the others (a
-- thread is read by its own receipts); messages in the main timeline are not in this index.
CREATE INDEX push_room_actions_threads ON push_room_actions(room_nid, stream_ordering) WHERE thread_id <> '';

-- Whom a room's row is for: the local users joined to the room when the event came, that is
-- whose span (joined after `from_stream`, left at `to_stream`, NULL while still joined)
-- strictly contains the event's position. The sender is never notified of their own event.
CREATE TABLE push_spans (
    user_nid    INTEGER NOT NULL,
    room_nid    INTEGER NOT NULL,
    from_stream INTEGER NOT NULL,
    to_stream   INTEGER,
    PRIMARY KEY (user_nid, room_nid, from_stream)
) STRICT, WITHOUT ROWID;
-- The prune finds who a room's rows are for.
CREATE INDEX push_spans_room ON push_spans(room_nid);

-- Local users joined now get a span from their current membership on. Every older
-- notification is already a row of its own.
INSERT OR IGNORE INTO user_nids (user_id)
SELECT m.user_id FROM memberships m JOIN users u ON u.user_id = m.user_id WHERE m.membership = 'join'
ORDER BY m.user_id;
INSERT OR IGNORE INTO room_nids (room_id)
SELECT DISTINCT m.room_id FROM memberships m JOIN users u ON u.user_id = m.user_id WHERE m.membership = 'join'
ORDER BY m.room_id;
INSERT INTO push_spans (user_nid, room_nid, from_stream)
SELECT un.nid, rn.nid, m.stream_ordering
FROM memberships m
JOIN users u ON u.user_id = m.user_id
JOIN user_nids un ON un.user_id = m.user_id
JOIN room_nids rn ON rn.room_id = m.room_id
WHERE m.membership = 'join';
