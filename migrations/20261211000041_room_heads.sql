-- Why: a start needs the stream position of each room's latest event and latest relation.
-- Finding them searched the events index once per room: with 2,000 rooms, 2,000 reads from
-- random places in the database file, about 300 ms of a cold start. Kept in the room's row,
-- they are read with the rooms table (a few dozen pages, in order).
--
-- `head` is MAX(stream_ordering) of the room's events, `relation_head` that of its relations,
-- NULL while there are none. The statements that add events keep them (`storage::append`,
-- `storage::events::place_outlier`); a purge deletes the row with the events. Not triggers:
-- a trigger makes SQLite keep a statement journal for the INSERT of every event, which cost
-- more than the update itself (23,000 instructions of 42,000 per message sent).
ALTER TABLE rooms ADD COLUMN head INTEGER;
ALTER TABLE rooms ADD COLUMN relation_head INTEGER;

UPDATE rooms SET
    head = (SELECT MAX(e.stream_ordering) FROM events e WHERE e.room_id = rooms.room_id),
    relation_head = (SELECT MAX(r.stream_ordering) FROM event_relations r WHERE r.room_id = rooms.room_id);
