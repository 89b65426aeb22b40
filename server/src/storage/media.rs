//! The content repository's metadata: media items, their thumbnails and cached URL previews.
//! The bytes themselves are files (see `service::media::store`).

use sqlx::SqliteExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MediaRow {
    pub uploader: Option<String>,
    pub sha256: Option<String>,
    pub size: i64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub expires_ts: Option<i64>,
    pub authenticated: bool,
    /// Remote media: when it was last served.
    pub last_access_ts: Option<i64>,
    /// The admin who quarantined it (it is not served while set).
    pub quarantined_by: Option<String>,
}

pub async fn get(ex: impl SqliteExecutor<'_>, origin: &str, media_id: &str) -> sqlx::Result<Option<MediaRow>> {
    sqlx::query_as("SELECT uploader, sha256, size, content_type, filename, expires_ts, authenticated, last_access_ts, quarantined_by FROM media WHERE origin = ? AND media_id = ?").bind(origin).bind(media_id).fetch_optional(ex).await
}

/// Quarantines (`by` an admin) or releases (`by` None) the items named, as (origin, media ID),
/// and every other item with the same content, as Synapse does; protected items are left
/// alone when quarantining. Answers how many rows changed.
pub async fn quarantine(
    conn: &mut sqlx::SqliteConnection,
    items: &[(String, String)],
    by: Option<&str>,
) -> sqlx::Result<u64> {
    let items = serde_json::json!(items).to_string();
    let named = "SELECT m.origin, m.media_id, m.sha256 FROM media m JOIN json_each(?2) j
                 ON m.origin = json_extract(j.value, '$[0]') AND m.media_id = json_extract(j.value, '$[1]')
                 WHERE (?1 IS NULL OR m.safe_from_quarantine = 0)";
    let by_content = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE media SET quarantined_by = ?1
         WHERE sha256 IN (SELECT sha256 FROM ({named}) WHERE sha256 IS NOT NULL)
           AND (?1 IS NULL OR safe_from_quarantine = 0)"
    )))
    .bind(by)
    .bind(&items)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Items whose content has not arrived yet (a reserved upload) go by ID.
    let by_id = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE media SET quarantined_by = ?1
         WHERE sha256 IS NULL AND (origin, media_id) IN (SELECT origin, media_id FROM ({named}))"
    )))
    .bind(by)
    .bind(&items)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(by_content + by_id)
}

/// Protects a media item of this server from quarantine, or ends that.
pub async fn set_safe_from_quarantine(
    ex: impl SqliteExecutor<'_>,
    origin: &str,
    media_id: &str,
    safe: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE media SET safe_from_quarantine = ? WHERE origin = ? AND media_id = ?")
        .bind(safe)
        .bind(origin)
        .bind(media_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The IDs of the media `uploader` put here.
pub async fn ids_of_uploader(ex: impl SqliteExecutor<'_>, origin: &str, uploader: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT media_id FROM media WHERE origin = ? AND uploader = ? ORDER BY media_id")
            .bind(origin)
            .bind(uploader)
            .fetch_all(ex)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// A complete media item (content already stored).
pub struct NewMedia<'a> {
    pub origin: &'a str,
    pub media_id: &'a str,
    pub uploader: Option<&'a str>,
    pub sha256: &'a str,
    pub size: i64,
    pub content_type: Option<&'a str>,
    pub filename: Option<&'a str>,
    pub now: i64,
    pub authenticated: bool,
}

pub async fn insert(ex: impl SqliteExecutor<'_>, m: &NewMedia<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (origin, media_id, uploader, sha256, size, content_type, filename, created_ts, authenticated)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.origin)
    .bind(m.media_id)
    .bind(m.uploader)
    .bind(m.sha256)
    .bind(m.size)
    .bind(m.content_type)
    .bind(m.filename)
    .bind(m.now)
    .bind(m.authenticated)
    .execute(ex)
    .await?;
    Ok(())
}

/// Reserves an ID for an asynchronous upload.
pub async fn insert_pending(
    ex: impl SqliteExecutor<'_>,
    origin: &str,
    media_id: &str,
    uploader: &str,
    now: i64,
    expires_ts: i64,
    authenticated: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (origin, media_id, uploader, created_ts, expires_ts, authenticated) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(origin)
    .bind(media_id)
    .bind(uploader)
    .bind(now)
    .bind(expires_ts)
    .bind(authenticated)
    .execute(ex)
    .await?;
    Ok(())
}

/// Stored content and what the uploader said of it.
pub struct Content<'a> {
    pub sha256: &'a str,
    pub size: i64,
    pub content_type: Option<&'a str>,
    pub filename: Option<&'a str>,
}

/// Fills a pending item with its content; false when it was no longer pending (filled by a
/// concurrent request, or expired and swept).
pub async fn complete_pending(
    ex: impl SqliteExecutor<'_>,
    origin: &str,
    media_id: &str,
    content: &Content<'_>,
    now: i64,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE media SET sha256 = ?, size = ?, content_type = ?, filename = ?, expires_ts = NULL
         WHERE origin = ? AND media_id = ? AND sha256 IS NULL AND expires_ts > ?",
    )
    .bind(content.sha256)
    .bind(content.size)
    .bind(content.content_type)
    .bind(content.filename)
    .bind(origin)
    .bind(media_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The number of the user's asynchronous uploads still waiting for content.
pub async fn pending_count(ex: impl SqliteExecutor<'_>, uploader: &str, now: i64) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM media WHERE uploader = ? AND sha256 IS NULL AND expires_ts > ?")
            .bind(uploader)
            .bind(now)
            .fetch_one(ex)
            .await?;
    Ok(n)
}

/// Bytes the user has uploaded (each upload counted, even when its content is shared).
pub async fn bytes_used(ex: impl SqliteExecutor<'_>, uploader: &str) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = ?")
        .bind(uploader)
        .fetch_one(ex)
        .await?;
    Ok(n)
}

/// Drops reserved IDs whose time ran out without content; returns how many.
pub async fn delete_expired_pending(ex: impl SqliteExecutor<'_>, now: i64) -> sqlx::Result<u64> {
    let r = sqlx::query("DELETE FROM media WHERE sha256 IS NULL AND expires_ts <= ?").bind(now).execute(ex).await?;
    Ok(r.rows_affected())
}

/// Bytes of distinct stored content (each file once), for the dashboard.
pub async fn stored_bytes(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM media WHERE sha256 IS NOT NULL GROUP BY sha256)",
    )
    .fetch_one(ex)
    .await?;
    Ok(n)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThumbnailRow {
    pub thumb_sha256: String,
    pub content_type: String,
    pub size: i64,
}

pub async fn thumbnail(
    ex: impl SqliteExecutor<'_>,
    sha256: &str,
    width: u32,
    height: u32,
    method: &str,
    animated: bool,
) -> sqlx::Result<Option<ThumbnailRow>> {
    sqlx::query_as(
        "SELECT thumb_sha256, content_type, size FROM media_thumbnails
         WHERE sha256 = ? AND width = ? AND height = ? AND method = ? AND animated = ?",
    )
    .bind(sha256)
    .bind(width)
    .bind(height)
    .bind(method)
    .bind(animated)
    .fetch_optional(ex)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_thumbnail(
    ex: impl SqliteExecutor<'_>,
    sha256: &str,
    width: u32,
    height: u32,
    method: &str,
    animated: bool,
    thumb_sha256: &str,
    content_type: &str,
    size: i64,
) -> sqlx::Result<()> {
    // Two requests may make the same thumbnail at once; both wrote the same bytes.
    sqlx::query(
        "INSERT OR IGNORE INTO media_thumbnails (sha256, width, height, method, animated, thumb_sha256, content_type, size)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(sha256)
    .bind(width)
    .bind(height)
    .bind(method)
    .bind(animated)
    .bind(thumb_sha256)
    .bind(content_type)
    .bind(size)
    .execute(ex)
    .await?;
    Ok(())
}

/// A cached preview: (og JSON, error message, fetched_ts).
pub async fn url_preview(
    ex: impl SqliteExecutor<'_>,
    url: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>, i64)>> {
    sqlx::query_as("SELECT og, error, fetched_ts FROM url_previews WHERE url = ?").bind(url).fetch_optional(ex).await
}

pub async fn put_url_preview(
    ex: impl SqliteExecutor<'_>,
    url: &str,
    og: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT OR REPLACE INTO url_previews (url, og, error, fetched_ts) VALUES (?, ?, ?, ?)")
        .bind(url)
        .bind(og)
        .bind(error)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets previews older than `before`.
pub async fn delete_url_previews_before(ex: impl SqliteExecutor<'_>, before: i64) -> sqlx::Result<u64> {
    let r = sqlx::query("DELETE FROM url_previews WHERE fetched_ts < ?").bind(before).execute(ex).await?;
    Ok(r.rows_affected())
}

/// Stores media fetched from another server (no uploader; served from now on), or refreshes
/// the row when another request stored it meanwhile.
pub async fn insert_remote(ex: impl SqliteExecutor<'_>, m: &NewMedia<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (origin, media_id, sha256, size, content_type, filename, created_ts, authenticated, last_access_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?7)
         ON CONFLICT (origin, media_id) DO UPDATE SET sha256 = ?3, size = ?4, content_type = ?5, filename = ?6,
             last_access_ts = ?7",
    )
    .bind(m.origin)
    .bind(m.media_id)
    .bind(m.sha256)
    .bind(m.size)
    .bind(m.content_type)
    .bind(m.filename)
    .bind(m.now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Media was served: its lifetime starts again.
pub async fn touch(ex: impl SqliteExecutor<'_>, origin: &str, media_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE media SET last_access_ts = ? WHERE origin = ? AND media_id = ?")
        .bind(now)
        .bind(origin)
        .bind(media_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes remote media last served before `before` and the thumbnails of content no media
/// uses any more; answers the files nothing refers to now (for the caller to delete).
pub async fn delete_remote_before(conn: &mut sqlx::SqliteConnection, before: i64) -> sqlx::Result<Vec<String>> {
    let gone: Vec<(Option<String>,)> = sqlx::query_as(
        "DELETE FROM media WHERE uploader IS NULL AND last_access_ts IS NOT NULL AND last_access_ts < ? RETURNING sha256",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    orphans(conn, gone).await
}

/// Deletes media uploaded here that nobody downloaded (or uploaded) since `before`, except
/// the pictures people use as their avatar (Synapse's `keep_profiles`); answers the files
/// nothing refers to now, as `delete_remote_before` does.
pub async fn delete_local_before(
    conn: &mut sqlx::SqliteConnection,
    origin: &str,
    before: i64,
) -> sqlx::Result<Vec<String>> {
    let gone: Vec<(Option<String>,)> = sqlx::query_as(
        "DELETE FROM media
         WHERE origin = ?1 AND uploader IS NOT NULL AND sha256 IS NOT NULL
           AND COALESCE(last_access_ts, created_ts) < ?2
           AND 'mxc://' || origin || '/' || media_id NOT IN
               (SELECT avatar_url FROM users WHERE avatar_url IS NOT NULL AND deactivated = 0)
         RETURNING sha256",
    )
    .bind(origin)
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    orphans(conn, gone).await
}

/// Of the content of deleted media rows, the files nothing uses any more, with their
/// thumbnails (whose rows are deleted here).
async fn orphans(conn: &mut sqlx::SqliteConnection, gone: Vec<(Option<String>,)>) -> sqlx::Result<Vec<String>> {
    let mut orphans = Vec::new();
    for sha in gone.into_iter().filter_map(|r| r.0) {
        if file_in_use(&mut *conn, &sha).await? {
            continue;
        }
        let thumbs: Vec<(String,)> =
            sqlx::query_as("DELETE FROM media_thumbnails WHERE sha256 = ? RETURNING thumb_sha256")
                .bind(&sha)
                .fetch_all(&mut *conn)
                .await?;
        for (thumb,) in thumbs {
            if thumb != sha && !file_in_use(&mut *conn, &thumb).await? {
                orphans.push(thumb);
            }
        }
        orphans.push(sha);
    }
    orphans.sort();
    orphans.dedup();
    Ok(orphans)
}

/// Whether a media item or a thumbnail still uses the file.
pub async fn file_in_use(ex: impl SqliteExecutor<'_>, sha256: &str) -> sqlx::Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT EXISTS(SELECT 1 FROM media WHERE sha256 = ?1) OR EXISTS(SELECT 1 FROM media_thumbnails WHERE thumb_sha256 = ?1)",
    )
    .bind(sha256)
    .fetch_one(ex)
    .await?;
    Ok(n != 0)
}

/// One uploader's media, for Synapse's `statistics/users/media`.
#[derive(Debug, sqlx::FromRow)]
pub struct UploaderStats {
    pub user_id: String,
    pub displayname: Option<String>,
    pub media_count: i64,
    pub media_length: i64,
}

/// The order of `uploader_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploaderOrder {
    UserId,
    Displayname,
    Count,
    Length,
}

/// Which uploads `uploader_stats` counts, in which order, which page.
#[derive(Debug, Clone)]
pub struct UploaderFilter {
    /// This server's name: only media uploaded here.
    pub origin: String,
    pub from_ts: i64,
    pub until_ts: Option<i64>,
    /// Part of the localpart or the display name.
    pub search: Option<String>,
    pub order: UploaderOrder,
    pub backwards: bool,
    pub from: i64,
    pub limit: i64,
}

fn push_uploader_filter(q: &mut sqlx::QueryBuilder<sqlx::Sqlite>, f: &UploaderFilter) {
    q.push(" FROM media m LEFT JOIN users u ON u.user_id = m.uploader WHERE m.uploader IS NOT NULL AND m.sha256 IS NOT NULL AND m.origin = ")
        .push_bind(f.origin.clone())
        .push(" AND m.created_ts >= ")
        .push_bind(f.from_ts);
    if let Some(until) = f.until_ts {
        q.push(" AND m.created_ts <= ").push_bind(until);
    }
    if let Some(term) = &f.search {
        q.push(" AND (instr(lower(coalesce(u.localpart, '')), lower(")
            .push_bind(term.clone())
            .push(")) > 0 OR instr(lower(coalesce(u.displayname, '')), lower(")
            .push_bind(term.clone())
            .push(")) > 0)");
    }
}

/// Media uploaded here per uploader (count and bytes), one page, and how many uploaders match.
pub async fn uploader_stats(ex: &sqlx::SqlitePool, f: &UploaderFilter) -> sqlx::Result<(Vec<UploaderStats>, i64)> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT m.uploader AS user_id, u.displayname AS displayname, COUNT(*) AS media_count, COALESCE(SUM(m.size), 0) AS media_length",
    );
    push_uploader_filter(&mut q, f);
    q.push(" GROUP BY m.uploader ORDER BY ");
    q.push(match f.order {
        UploaderOrder::UserId => "user_id",
        UploaderOrder::Displayname => "displayname",
        UploaderOrder::Count => "media_count",
        UploaderOrder::Length => "media_length",
    });
    let dir = if f.backwards { " DESC" } else { " ASC" };
    q.push(dir).push(", user_id").push(dir);
    q.push(" LIMIT ").push_bind(f.limit).push(" OFFSET ").push_bind(f.from);
    let rows = q.build_query_as::<UploaderStats>().fetch_all(ex).await?;
    let mut count = sqlx::QueryBuilder::new("SELECT COUNT(DISTINCT m.uploader)");
    push_uploader_filter(&mut count, f);
    let (total,): (i64,) = count.build_query_as().fetch_one(ex).await?;
    Ok((rows, total))
}

/// A media item uploaded here, as Synapse's admin API lists a user's media.
#[derive(Debug, sqlx::FromRow)]
pub struct UserMedia {
    pub media_id: String,
    pub created_ts: i64,
    pub last_access_ts: Option<i64>,
    pub size: i64,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub quarantined_by: Option<String>,
    pub safe_from_quarantine: bool,
}

/// The order of `user_media`, by column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMediaOrder {
    MediaId,
    UploadName,
    Created,
    LastAccess,
    Length,
    Type,
    QuarantinedBy,
    SafeFromQuarantine,
}

/// One page of the media `uploader` put here (content received), and how many there are.
pub async fn user_media(
    ex: &sqlx::SqlitePool,
    origin: &str,
    uploader: &str,
    order: UserMediaOrder,
    backwards: bool,
    from: i64,
    limit: i64,
) -> sqlx::Result<(Vec<UserMedia>, i64)> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT media_id, created_ts, last_access_ts, size, content_type, filename, quarantined_by, safe_from_quarantine
         FROM media WHERE sha256 IS NOT NULL AND origin = ",
    );
    q.push_bind(origin.to_owned()).push(" AND uploader = ").push_bind(uploader.to_owned()).push(" ORDER BY ");
    q.push(match order {
        UserMediaOrder::MediaId => "media_id",
        UserMediaOrder::UploadName => "filename",
        UserMediaOrder::Created => "created_ts",
        UserMediaOrder::LastAccess => "last_access_ts",
        UserMediaOrder::Length => "size",
        UserMediaOrder::Type => "content_type",
        UserMediaOrder::QuarantinedBy => "quarantined_by",
        UserMediaOrder::SafeFromQuarantine => "safe_from_quarantine",
    });
    let dir = if backwards { " DESC" } else { " ASC" };
    q.push(dir).push(", media_id").push(dir);
    q.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(from);
    let rows = q.build_query_as::<UserMedia>().fetch_all(ex).await?;
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM media WHERE sha256 IS NOT NULL AND origin = ? AND uploader = ?")
            .bind(origin)
            .bind(uploader)
            .fetch_one(ex)
            .await?;
    Ok((rows, total))
}

/// Deletes media of this server by ID; answers the IDs deleted and the files nothing refers to
/// now (for the caller to delete).
pub async fn delete_local(
    conn: &mut sqlx::SqliteConnection,
    origin: &str,
    media_ids: &[String],
) -> sqlx::Result<(Vec<String>, Vec<String>)> {
    let mut deleted = Vec::new();
    let mut gone = Vec::new();
    for id in media_ids {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("DELETE FROM media WHERE origin = ? AND media_id = ? RETURNING sha256")
                .bind(origin)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(sha) = row {
            deleted.push(id.clone());
            gone.push(sha);
        }
    }
    Ok((deleted, orphans(conn, gone).await?))
}

/// Media uploaded here last used (downloaded, or else uploaded) before `before`, bigger than
/// `size_gt` bytes; with `keep_profiles`, not the pictures people use as their avatar.
pub async fn local_before(
    ex: impl SqliteExecutor<'_>,
    origin: &str,
    before: i64,
    size_gt: i64,
    keep_profiles: bool,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT media_id FROM media
         WHERE origin = ?1 AND uploader IS NOT NULL AND sha256 IS NOT NULL
           AND COALESCE(last_access_ts, created_ts) < ?2 AND size > ?3
           AND NOT (?4 AND 'mxc://' || origin || '/' || media_id IN
               (SELECT avatar_url FROM users WHERE avatar_url IS NOT NULL))
         ORDER BY media_id",
    )
    .bind(origin)
    .bind(before)
    .bind(size_gt)
    .bind(keep_profiles)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
