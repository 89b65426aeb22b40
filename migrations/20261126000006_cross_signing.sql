-- Why: cross-signing (spec: client-server API, "Cross-signing"). A user's master key vouches for
-- their self-signing key, which signs their own devices, and their user-signing key, which signs
-- other people's master keys. The server keeps the public keys and the signatures people upload,
-- and hands them out with the keys they sign.

CREATE TABLE cross_signing_keys (
    user_id  TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    -- master, self_signing or user_signing
    key_type TEXT NOT NULL,
    -- The CrossSigningKey JSON as uploaded (with its signatures).
    key      TEXT NOT NULL,
    PRIMARY KEY (user_id, key_type)
) STRICT, WITHOUT ROWID;

-- Signatures from POST /keys/signatures/upload, merged into the signed key when it is queried.
CREATE TABLE key_signatures (
    target_user   TEXT NOT NULL,
    -- A device ID, or the public key of a cross-signing key.
    target_key    TEXT NOT NULL,
    signer_user   TEXT NOT NULL,
    -- ed25519:<device ID or public key>
    signer_key_id TEXT NOT NULL,
    signature     TEXT NOT NULL,
    PRIMARY KEY (target_user, target_key, signer_user, signer_key_id)
) STRICT, WITHOUT ROWID;

-- A deleted device's signatures go with it.
CREATE TRIGGER devices_removed_signatures AFTER DELETE ON devices BEGIN
    DELETE FROM key_signatures WHERE target_user = OLD.user_id AND target_key = OLD.device_id;
END;
