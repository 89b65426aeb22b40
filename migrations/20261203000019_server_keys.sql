-- Other servers' signing keys (federation): every verify key a server published, with how
-- long it may be used. A key seen under old_verify_keys has expired_ts set: events signed
-- before that moment still verify, requests do not.
CREATE TABLE server_signing_keys (
    server_name    TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    -- Unpadded base64, as published.
    verify_key     TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    expired_ts     INTEGER,
    PRIMARY KEY (server_name, key_id)
) STRICT;

-- The newest key document of each server exactly as it signed it, so that this server can
-- vouch for it as a notary (`/_matrix/key/v2/query`).
CREATE TABLE server_key_documents (
    server_name    TEXT PRIMARY KEY,
    document       TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    fetched_ts     INTEGER NOT NULL
) STRICT;
