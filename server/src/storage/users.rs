//! The `users` table: accounts, password hashes, admin and guest flags, deactivation.

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub password_hash: Option<String>,
    pub deactivated: bool,
}

pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub localpart: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub displayname: Option<&'a str>,
    pub created_ts: i64,
}

/// Inserts a user. Returns `false` (and changes nothing) when the ID is taken.
pub async fn insert(ex: impl SqliteExecutor<'_>, u: &NewUser<'_>) -> sqlx::Result<bool> {
    let res = sqlx::query(
        "INSERT INTO users (user_id, localpart, password_hash, is_admin, is_guest, displayname, created_ts)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(u.user_id)
    .bind(u.localpart)
    .bind(u.password_hash)
    .bind(u.is_admin)
    .bind(u.is_guest)
    .bind(u.displayname)
    .bind(u.created_ts)
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn get(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT password_hash, deactivated FROM users WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// What an admin set on an account: (is_admin, deactivated, locked, suspended).
pub async fn moderation(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<(bool, bool, bool, bool)>> {
    sqlx::query_as("SELECT is_admin, deactivated, locked, suspended FROM users WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

pub async fn set_locked(ex: impl SqliteExecutor<'_>, user_id: &str, locked: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET locked = ? WHERE user_id = ?").bind(locked).bind(user_id).execute(ex).await?;
    Ok(())
}

pub async fn set_suspended(ex: impl SqliteExecutor<'_>, user_id: &str, suspended: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET suspended = ? WHERE user_id = ?").bind(suspended).bind(user_id).execute(ex).await?;
    Ok(())
}

pub async fn exists(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM users WHERE user_id = ?").bind(user_id).fetch_optional(ex).await?;
    Ok(row.is_some())
}

pub async fn set_password_hash(ex: impl SqliteExecutor<'_>, user_id: &str, hash: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = ? WHERE user_id = ?").bind(hash).bind(user_id).execute(ex).await?;
    Ok(())
}

/// Marks the account deactivated and forgets its password and profile; `erase` marks it
/// erased too (its messages are then redacted for those who were not there to see them).
pub async fn deactivate(ex: impl SqliteExecutor<'_>, user_id: &str, erase: bool) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET deactivated = 1, password_hash = NULL, displayname = NULL, avatar_url = NULL,
         erased = MAX(erased, ?) WHERE user_id = ?",
    )
    .bind(erase)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// The erased accounts (few: a family deletes one now and then).
pub async fn erased(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT user_id FROM users WHERE erased = 1").fetch_all(ex).await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// Upgrades a guest account to a full one (spec: "Guest access", upgrading with /register).
pub async fn upgrade_guest(ex: impl SqliteExecutor<'_>, user_id: &str, password_hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET is_guest = 0, password_hash = ? WHERE user_id = ? AND is_guest = 1")
        .bind(password_hash)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Next free numeric localpart for a guest or a user who gave no username.
pub async fn max_numeric_localpart(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as(
        // At most 15 digits, so the next number cannot overflow (a user may pick a huge number).
        "SELECT MAX(CAST(localpart AS INTEGER)) FROM users
         WHERE localpart NOT GLOB '*[^0-9]*' AND localpart <> '' AND length(localpart) <= 15",
    )
    .fetch_one(ex)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Display name and avatar URL.
pub async fn profile(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as("SELECT displayname, avatar_url FROM users WHERE user_id = ?").bind(user_id).fetch_optional(ex).await
}

/// Opens a deactivated account again (with a password, or none).
pub async fn reactivate(ex: impl SqliteExecutor<'_>, user_id: &str, password_hash: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET deactivated = 0, erased = 0, password_hash = ? WHERE user_id = ?")
        .bind(password_hash)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_displayname(ex: impl SqliteExecutor<'_>, user_id: &str, name: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET displayname = ? WHERE user_id = ?").bind(name).bind(user_id).execute(ex).await?;
    Ok(())
}

pub async fn set_avatar_url(ex: impl SqliteExecutor<'_>, user_id: &str, url: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET avatar_url = ? WHERE user_id = ?").bind(url).bind(user_id).execute(ex).await?;
    Ok(())
}

/// Users whose ID or display name contains `term`. Unless `everyone`, only those `searcher`
/// shares a room with and those in public or world-readable rooms (Synapse's user directory
/// with `search_all_users = false`; the searcher is found only through a public room).
pub async fn search(
    ex: impl SqliteExecutor<'_>,
    term: &str,
    searcher: &str,
    everyone: bool,
    limit: i64,
) -> sqlx::Result<Vec<(String, Option<String>, Option<String>)>> {
    let pattern = format!("%{}%", term.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT user_id, displayname, avatar_url FROM users
         WHERE deactivated = 0 AND is_guest = 0
           AND (lower(user_id) LIKE ?1 ESCAPE '\\' OR lower(COALESCE(displayname, '')) LIKE ?1 ESCAPE '\\')
           AND (?3 OR user_id IN (
                 SELECT o.user_id FROM memberships m CROSS JOIN memberships o ON o.room_id = m.room_id
                 WHERE m.user_id = ?2 AND m.membership = 'join' AND o.membership = 'join' AND o.user_id != ?2
               UNION
                 SELECT o.user_id FROM current_state c
                   JOIN events e ON e.event_id = c.event_id
                   JOIN memberships o ON o.room_id = c.room_id AND o.membership = 'join'
                 WHERE c.state_key = ''
                   AND ((c.event_type = 'm.room.join_rules'
                         AND json_extract(e.pdu, '$.content.join_rule') = 'public')
                     OR (c.event_type = 'm.room.history_visibility'
                         AND json_extract(e.pdu, '$.content.history_visibility') = 'world_readable'))))
         ORDER BY user_id LIMIT {limit}"
    )))
    .bind(pattern)
    .bind(searcher)
    .bind(everyone)
    .fetch_all(ex)
    .await
}

/// One account as the dashboard lists it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct UserSummary {
    pub user_id: String,
    pub displayname: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub created_ts: i64,
}

/// Every account, oldest first.
pub async fn list_all(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<UserSummary>> {
    sqlx::query_as("SELECT user_id, displayname, is_admin, is_guest, deactivated, created_ts FROM users ORDER BY created_ts, user_id")
        .fetch_all(ex)
        .await
}

/// Returns false when there is no such account.
pub async fn set_admin(ex: impl SqliteExecutor<'_>, user_id: &str, admin: bool) -> sqlx::Result<bool> {
    let r =
        sqlx::query("UPDATE users SET is_admin = ? WHERE user_id = ?").bind(admin).bind(user_id).execute(ex).await?;
    Ok(r.rows_affected() == 1)
}

/// Every account ever made here, deactivated and guests included.
pub async fn count_all(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(ex).await?;
    Ok(n)
}

/// Accounts that can sign in (not deactivated, not guests).
pub async fn count_active(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE deactivated = 0 AND is_guest = 0").fetch_one(ex).await?;
    Ok(n)
}

/// An account as Synapse's admin API shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct AdminUser {
    pub user_id: String,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub locked: bool,
    pub suspended: bool,
    pub created_ts: i64,
    /// The latest a device still signed in was seen.
    pub last_seen_ts: Option<i64>,
    pub user_type: Option<String>,
    pub shadow_banned: bool,
    pub erased: bool,
}

/// The order of `admin_list`: a column of `AdminUser`, by its SQL expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOrder {
    UserId,
    Displayname,
    Admin,
    Deactivated,
    Guest,
    Locked,
    AvatarUrl,
    Created,
    LastSeen,
    UserType,
    ShadowBanned,
}

impl AdminOrder {
    fn sql(self) -> &'static str {
        match self {
            Self::UserId => "u.user_id",
            Self::Displayname => "u.displayname",
            Self::Admin => "u.is_admin",
            Self::Deactivated => "u.deactivated",
            Self::Guest => "u.is_guest",
            Self::Locked => "u.locked",
            Self::AvatarUrl => "u.avatar_url",
            Self::Created => "u.created_ts",
            Self::LastSeen => "last_seen_ts",
            Self::UserType => "u.user_type",
            Self::ShadowBanned => "u.shadow_banned",
        }
    }
}

/// Which accounts `admin_list` answers, in which order, which page.
#[derive(Debug, Clone)]
pub struct AdminFilter {
    /// Part of the user ID (ignored with `name`).
    pub user_id: Option<String>,
    /// Part of the localpart or the display name.
    pub name: Option<String>,
    pub guests: bool,
    pub admins: Option<bool>,
    pub deactivated: bool,
    pub locked: bool,
    pub order: AdminOrder,
    pub backwards: bool,
    pub from: i64,
    pub limit: i64,
}

fn push_admin_filter(q: &mut sqlx::QueryBuilder<sqlx::Sqlite>, f: &AdminFilter) {
    q.push(" FROM users u WHERE 1 = 1");
    // instr, not LIKE: the admin's text is matched as it is, `_` and `%` included.
    if let Some(name) = &f.name {
        q.push(" AND (instr(lower(u.localpart), lower(")
            .push_bind(name.clone())
            .push(")) > 0 OR instr(lower(coalesce(u.displayname, '')), lower(")
            .push_bind(name.clone())
            .push(")) > 0)");
    } else if let Some(id) = &f.user_id {
        q.push(" AND instr(lower(u.user_id), lower(").push_bind(id.clone()).push(")) > 0");
    }
    if !f.guests {
        q.push(" AND u.is_guest = 0");
    }
    if !f.deactivated {
        q.push(" AND u.deactivated = 0");
    }
    if !f.locked {
        q.push(" AND u.locked = 0");
    }
    if let Some(admin) = f.admins {
        q.push(" AND u.is_admin = ").push_bind(admin);
    }
}

/// One page of accounts and how many there are in all, as the admin filtered them.
pub async fn admin_list(ex: &sqlx::SqlitePool, f: &AdminFilter) -> sqlx::Result<(Vec<AdminUser>, i64)> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT u.user_id, u.displayname, u.avatar_url, u.is_admin, u.is_guest, u.deactivated, u.locked, u.suspended, u.created_ts,
         (SELECT MAX(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id) AS last_seen_ts, u.user_type,
         u.shadow_banned, u.erased",
    );
    push_admin_filter(&mut q, f);
    let dir = if f.backwards { " DESC" } else { " ASC" };
    q.push(" ORDER BY ").push(f.order.sql()).push(dir).push(", u.user_id").push(dir);
    q.push(" LIMIT ").push_bind(f.limit).push(" OFFSET ").push_bind(f.from);
    let users = q.build_query_as::<AdminUser>().fetch_all(ex).await?;
    let mut count = sqlx::QueryBuilder::new("SELECT COUNT(*)");
    push_admin_filter(&mut count, f);
    let (total,): (i64,) = count.build_query_as().fetch_one(ex).await?;
    Ok((users, total))
}

/// One account as the admin API shows it.
pub async fn admin_get(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<AdminUser>> {
    sqlx::query_as(
        "SELECT u.user_id, u.displayname, u.avatar_url, u.is_admin, u.is_guest, u.deactivated, u.locked, u.suspended, u.created_ts,
         (SELECT MAX(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id) AS last_seen_ts, u.user_type,
         u.shadow_banned, u.erased
         FROM users u WHERE u.user_id = ?",
    )
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

/// An email address or phone number an admin recorded for an account.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Threepid {
    pub medium: String,
    pub address: String,
    pub validated_at: i64,
    pub added_at: i64,
}

pub async fn threepids(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<Threepid>> {
    sqlx::query_as(
        "SELECT medium, address, validated_at, added_at FROM user_threepids WHERE user_id = ? ORDER BY medium, address",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

/// Makes the account's threepids exactly `wanted` (medium, address): those it loses go, new
/// ones are added as validated now; one another account had moves here, as in Synapse.
pub async fn set_threepids(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    wanted: &[(String, String)],
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let list = serde_json::json!(wanted).to_string();
    sqlx::query(
        "DELETE FROM user_threepids WHERE user_id = ?1 AND (medium, address) NOT IN
         (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))",
    )
    .bind(user_id)
    .bind(&list)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1, ?3, ?3 FROM json_each(?2) WHERE true
         ON CONFLICT (medium, address) DO UPDATE SET user_id = excluded.user_id,
             validated_at = CASE WHEN user_id = excluded.user_id THEN validated_at ELSE excluded.validated_at END,
             added_at = CASE WHEN user_id = excluded.user_id THEN added_at ELSE excluded.added_at END",
    )
    .bind(user_id)
    .bind(&list)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Removes one of the account's threepids; whether it had it.
pub async fn delete_threepid(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    medium: &str,
    address: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM user_threepids WHERE user_id = ? AND medium = ? AND address = ?")
        .bind(user_id)
        .bind(medium)
        .bind(address)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn external_ids(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT auth_provider, external_id FROM user_external_ids WHERE user_id = ? ORDER BY auth_provider, external_id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

/// Makes the account's external IDs exactly `wanted` (provider, ID); false (and nothing
/// changed) when one of them belongs to another account.
pub async fn set_external_ids(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    wanted: &[(String, String)],
) -> sqlx::Result<bool> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let list = serde_json::json!(wanted).to_string();
    let (taken,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM user_external_ids x JOIN json_each(?2) j
         ON x.auth_provider = json_extract(j.value, '$[0]') AND x.external_id = json_extract(j.value, '$[1]')
         WHERE x.user_id != ?1",
    )
    .bind(user_id)
    .bind(&list)
    .fetch_one(&mut *tx)
    .await?;
    if taken > 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM user_external_ids WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT OR IGNORE INTO user_external_ids (auth_provider, external_id, user_id)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?1 FROM json_each(?2)",
    )
    .bind(user_id)
    .bind(&list)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn set_user_type(ex: impl SqliteExecutor<'_>, user_id: &str, user_type: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET user_type = ? WHERE user_id = ?").bind(user_type).bind(user_id).execute(ex).await?;
    Ok(())
}

pub async fn set_shadow_banned(ex: impl SqliteExecutor<'_>, user_id: &str, banned: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET shadow_banned = ? WHERE user_id = ?").bind(banned).bind(user_id).execute(ex).await?;
    Ok(())
}
