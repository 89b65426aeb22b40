-- Why: the content repository. A media item is an mxc:// URI (origin server + media ID); its
-- bytes live once per distinct content in a file named after their SHA-256 under
-- data_dir/media/, so identical uploads share a file. Remote media (fetched over federation,
-- a later issue) is a row with another origin and the same kind of file.
CREATE TABLE media (
    origin        TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    -- Who uploaded it (local media); NULL for remote media and server-made files (previews).
    uploader      TEXT,
    -- NULL while an asynchronous upload (POST /media/v1/create) waits for its content.
    sha256        TEXT,
    size          INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT,
    filename      TEXT,
    created_ts    INTEGER NOT NULL,
    -- For an asynchronous upload: when the unused ID expires (spec: unused_expires_at).
    expires_ts    INTEGER,
    -- Synapse's model for the move to authenticated media: media uploaded while
    -- enable_authenticated_media was off stays downloadable from the legacy endpoints.
    authenticated INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (origin, media_id)
) STRICT;

-- Quotas and the pending-upload limit count a user's media.
CREATE INDEX media_by_uploader ON media (uploader, created_ts);
-- Finding whether any media still uses a file.
CREATE INDEX media_by_sha256 ON media (sha256);

-- Thumbnails made on demand, one per (content, size, method, animated); the thumbnail's bytes
-- are stored like any media file, by their own hash.
CREATE TABLE media_thumbnails (
    sha256        TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    method        TEXT NOT NULL,
    animated      INTEGER NOT NULL,
    thumb_sha256  TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    PRIMARY KEY (sha256, width, height, method, animated)
) STRICT;

-- URL previews (GET /media/v3/preview_url), cached so a link posted in a busy room is fetched
-- once. `og` is the JSON answer; an error is cached too, for a shorter time.
CREATE TABLE url_previews (
    url           TEXT NOT NULL PRIMARY KEY,
    og            TEXT,
    error         TEXT,
    fetched_ts    INTEGER NOT NULL
) STRICT;
