-- Rooms a user forgot (POST /rooms/{roomId}/forget), as of their membership event then: a later
-- membership event of theirs (a rejoin, a new invite) ends it without touching this table.
CREATE TABLE forgotten_rooms (
    user_id     TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    forgotten_ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
