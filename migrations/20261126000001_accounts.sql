-- Why: the foundation schema. Accounts, their devices and the tokens that authenticate them,
-- registration tokens for invite-only sign-up, and a metadata table that lets an older binary
-- refuse a database written by a newer one. Tokens are stored only as SHA-256 hashes so a copy
-- of the database does not hand out sessions.

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY NOT NULL,            -- full MXID, @localpart:server
    localpart     TEXT NOT NULL UNIQUE,
    password_hash TEXT,                                 -- argon2id PHC string; NULL = no password login
    is_admin      INTEGER NOT NULL DEFAULT 0,
    is_guest      INTEGER NOT NULL DEFAULT 0,
    deactivated   INTEGER NOT NULL DEFAULT 0,
    displayname   TEXT,
    avatar_url    TEXT,
    created_ts    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    display_name TEXT,
    created_ts   INTEGER NOT NULL,
    last_seen_ts INTEGER,
    last_seen_ip TEXT,
    PRIMARY KEY (user_id, device_id)
) STRICT;

CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER,                                -- NULL = never
    -- The refresh token this one replaced. It stays valid until this token (or an access token
    -- issued with it) is first used, so a client that lost the /refresh response can retry.
    prev_refresh_id INTEGER REFERENCES refresh_tokens(id) ON DELETE SET NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX refresh_tokens_prev ON refresh_tokens(prev_refresh_id);

CREATE TABLE access_tokens (
    id               INTEGER PRIMARY KEY,
    token_hash       BLOB NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    created_ts       INTEGER NOT NULL,
    expires_ts       INTEGER,                           -- NULL = never (no refresh token)
    refresh_token_id INTEGER REFERENCES refresh_tokens(id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX access_tokens_device ON access_tokens(user_id, device_id);
CREATE INDEX refresh_tokens_device ON refresh_tokens(user_id, device_id);

-- Short-lived single-use tokens for m.login.token (POST /login/get_token).
CREATE TABLE login_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    expires_ts INTEGER NOT NULL
) STRICT;

-- Synapse-compatible registration tokens (/_synapse/admin/v1/registration_tokens).
CREATE TABLE registration_tokens (
    token        TEXT PRIMARY KEY NOT NULL,
    uses_allowed INTEGER,                               -- NULL = unlimited
    pending      INTEGER NOT NULL DEFAULT 0,
    completed    INTEGER NOT NULL DEFAULT 0,
    expiry_time  INTEGER                                -- ms since epoch; NULL = never
) STRICT;
