-- Other servers Hearth sends room events to, and how far each has got: after a restart (or a
-- kill -9) sending goes on from `stream_position`, so an answered event is never lost.
CREATE TABLE federation_destinations (
    destination     TEXT PRIMARY KEY,
    -- The last event (stream ordering) the destination accepted.
    stream_position INTEGER NOT NULL,
    -- Back-off after failures: no attempt before retry_at (ms), the next wait doubles.
    retry_at        INTEGER,
    backoff_ms      INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_success_ts INTEGER
) STRICT;
