-- A user's read position in a room counts their own latest event there; without this index
-- finding it walks every event of the room (unread counts are computed on every /sync).
CREATE INDEX events_room_sender ON events(room_id, sender, stream_ordering);
