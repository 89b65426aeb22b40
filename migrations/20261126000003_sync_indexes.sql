-- A user's read position in a room counts their own latest event there; without this index
-- finding it walks every event of the room (unread counts are computed on every /sync).
CREATE INDEX events_room_sender ON events(room_id, sender, stream_ordering);

-- Unread counts read (thread, highlight) of a user's push actions in a room after a position:
-- with both in the index the count never touches the table.
DROP INDEX event_push_actions_user_room;
CREATE INDEX event_push_actions_unread ON event_push_actions(user_id, room_id, stream_ordering, thread_id, highlight);
