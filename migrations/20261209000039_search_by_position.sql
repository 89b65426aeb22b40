-- Why: the full-text index kept its own copy of every indexed event: the text, the event ID,
-- the room ID, the stream position and the field's name (135 bytes of the 1,780 a message took
-- in a 12-member room). And its columns other than the text cannot be indexed in FTS5, so
-- forgetting a redacted event's text (`WHERE event_id = ?`) read every row of that copy, on the
-- write connection, for each redaction: 17 ms in a room of 40,000 messages, growing with every
-- message, while sends waited.
--
-- The index is now keyed by the event's stream position (the events table's key, which gives
-- its ID, room and type) and keeps no copy of the text (`content = ''`); `contentless_delete`
-- lets a redaction or a purge remove an entry by that key. The field an entry came from follows
-- from the event's type: `m.room.message` -> `content.body`, `m.room.name` -> `content.name`,
-- `m.room.topic` -> `content.topic`.
CREATE VIRTUAL TABLE event_search USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Entries whose event is gone (a purge that ran before this index was keyed) are left behind.
INSERT INTO event_search (rowid, body)
SELECT e.stream_ordering, f.body FROM events_fts f JOIN events e ON e.event_id = f.event_id;

DROP TABLE events_fts;
