-- OpenID tokens (spec: "OpenID"): a user asks for one and hands it to a third party (a widget,
-- Element Call's backend), which asks this server's federation API who it belongs to. Kept as
-- SHA-256 like access tokens; they expire after an hour.
CREATE TABLE openid_tokens (
    token_sha256 BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL,
    expires_ts   INTEGER NOT NULL
) STRICT;
