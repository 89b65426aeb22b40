-- Per-user exceptions to the rate limits, set through Synapse's admin API
-- (/_synapse/admin/v1/users/{userId}/override_ratelimit): messages_per_second 0 lifts every limit
-- for the user (a bot, a bridge); other values replace rc_message for them.
CREATE TABLE ratelimit_override (
    user_id             TEXT PRIMARY KEY,
    messages_per_second INTEGER NOT NULL,
    burst_count         INTEGER NOT NULL
) STRICT;
