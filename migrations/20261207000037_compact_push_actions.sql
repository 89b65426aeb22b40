-- Why: push actions were two thirds of the database (3.7 of 5.3 KB per message in a 12-member
-- room): one row per notified member per event, each repeating the event ID, user ID, room ID and
-- the actions as JSON, under three indexes. Now each is a row of small numbers in one B-tree
-- (about 20 bytes): users and rooms by number, the event by its stream position (the events
-- table's key, which gives its ID, room and time), and the actions as flags unless a rule's
-- tweaks say more than the flags can.

-- Local users and rooms by a small number. Not the tables' rowids: VACUUM (and so a backup's
-- VACUUM INTO) may renumber those.
CREATE TABLE user_nids (
    nid     INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE room_nids (
    nid     INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE push_actions (
    user_nid        INTEGER NOT NULL,
    room_nid        INTEGER NOT NULL,
    stream_ordering INTEGER NOT NULL,
    -- The thread the event is in; '' for the main timeline (stored in no bytes).
    thread_id       TEXT NOT NULL DEFAULT '',
    -- 1: highlight; 2: the sound "default". With `actions` NULL the actions are "notify" and
    -- these tweaks, in that order (what the default rules say).
    flags           INTEGER NOT NULL,
    -- The actions as JSON when the flags cannot say them (a custom rule's tweaks).
    actions         TEXT,
    -- Unread counts read a user's rows in a room after a position.
    PRIMARY KEY (user_nid, room_nid, stream_ordering)
) STRICT, WITHOUT ROWID;

INSERT INTO user_nids (user_id) SELECT DISTINCT user_id FROM event_push_actions ORDER BY user_id;
INSERT INTO room_nids (room_id) SELECT DISTINCT room_id FROM event_push_actions ORDER BY room_id;
INSERT OR IGNORE INTO push_actions (user_nid, room_nid, stream_ordering, thread_id, flags, actions)
SELECT u.nid, r.nid, a.stream_ordering, a.thread_id,
       CASE
           WHEN a.actions = '["notify"]' AND a.highlight = 0 THEN 0
           WHEN a.actions = '["notify",{"set_tweak":"highlight"}]' THEN 1
           WHEN a.actions = '["notify",{"set_tweak":"sound","value":"default"}]' AND a.highlight = 0 THEN 2
           WHEN a.actions = '["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]' THEN 3
           ELSE a.highlight
       END,
       CASE
           WHEN a.actions IN ('["notify"]', '["notify",{"set_tweak":"highlight"}]',
                              '["notify",{"set_tweak":"sound","value":"default"}]',
                              '["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]')
                AND (a.highlight = 1) = (a.actions LIKE '%"highlight"%') THEN NULL
           ELSE a.actions
       END
FROM event_push_actions a
JOIN user_nids u ON u.user_id = a.user_id
JOIN room_nids r ON r.room_id = a.room_id;

DROP TABLE event_push_actions;
