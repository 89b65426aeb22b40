-- Delayed events (MSC4140, as Synapse serves it): an event a user scheduled to be sent after a
-- delay unless they cancel or restart it first. Element Call uses them so that a call membership
-- ends when its client disappears.
CREATE TABLE delayed_events (
    delay_id     TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    room_id      TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    -- NULL for a message event.
    state_key    TEXT,
    content      TEXT NOT NULL,
    delay_ms     INTEGER NOT NULL,
    -- When it is to be sent (restarting moves it to now + delay_ms).
    send_ts      INTEGER NOT NULL,
    -- 1 once sending has begun: it can no longer be cancelled or restarted. The row goes away
    -- when the event is stored; one left at 1 by a crash is sent again at start, and the event's
    -- transaction ID (the delay ID) makes that second send answer the first event.
    is_processed INTEGER NOT NULL DEFAULT 0,
    -- The scheduling request's device and transaction ID, so a retried PUT answers the same delay.
    txn_device_id TEXT,
    txn_id       TEXT
) STRICT;

CREATE INDEX delayed_events_send_ts ON delayed_events(send_ts);
CREATE INDEX delayed_events_user ON delayed_events(user_id, send_ts);
CREATE INDEX delayed_events_state ON delayed_events(room_id, event_type, state_key) WHERE state_key IS NOT NULL;
CREATE UNIQUE INDEX delayed_events_txn ON delayed_events(user_id, txn_device_id, txn_id) WHERE txn_id IS NOT NULL;
