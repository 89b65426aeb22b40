-- Why: media of other servers, fetched over federation when a local user asks for it, is kept
-- in the same content store as local media (rows with the remote `origin` and no uploader).
-- `last_access_ts` says when it was last served, for `media_retention.remote_media_lifetime`
-- (Synapse's rule: remote media not asked for in that long is dropped; fetched again if
-- needed).
ALTER TABLE media ADD COLUMN last_access_ts INTEGER;
CREATE INDEX media_remote_last_access ON media (last_access_ts) WHERE last_access_ts IS NOT NULL;
