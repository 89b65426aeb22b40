//! Accounts and sessions: registration, login, tokens, devices, password changes, deactivation.
//!
//! No SQL here (that is `storage`) and no HTTP types (that is `api`).

use std::{sync::Arc, time::Duration};

use hashlink::LruCache;

use http::StatusCode;
use ruma::{
    OwnedDeviceId, OwnedUserId, UserId,
    api::{client::uiaa::AuthType, error::ErrorKind},
};

use super::e2ee::DeviceListHead;
use super::{
    guarded::Guarded,
    passwords,
    ratelimit::FailureLimiter,
    tokens,
    uiaa::{Authorised, Stage, Uiaa},
};
use crate::{
    config::Config,
    error::{Error, Result},
    storage::{self, Db, now_ms, registration_tokens, users::NewUser},
};

/// Lifetime of an m.login.token from `/login/get_token`.
pub const LOGIN_TOKEN_LIFETIME: Duration = Duration::from_secs(120);
/// How long an OpenID token lasts (Synapse: an hour too).
const OPENID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Device "last seen" is written at most this often per device, to keep writes off hot reads.
const LAST_SEEN_GRANULARITY_MS: i64 = 60_000;

/// The authenticated requester.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub is_admin: bool,
    pub is_guest: bool,
    /// Locked by an admin: only logging out is allowed (the http layer refuses the rest).
    pub locked: bool,
    /// Suspended by an admin: see [`Session::refuse_if_suspended`].
    pub suspended: bool,
    /// Shadow-banned by an admin (Synapse's): messages, state changes, redactions, invites and
    /// typing are answered as if done, and nothing happens.
    pub shadow_banned: bool,
    /// An admin acting as the user (Synapse's `users/{userId}/login`): the session's device is
    /// hidden, and it cannot hold end-to-end encryption keys.
    pub puppet: bool,
}

impl Session {
    /// Refuses what a suspended account may not do (spec: "Account suspension"): joining,
    /// knocking, inviting, sending, creating rooms, changing the profile, redacting others.
    /// Reading, leaving, redacting one's own events, keys and devices stay allowed.
    pub fn refuse_if_suspended(&self, action: &str) -> Result<()> {
        if self.suspended {
            return Err(Error::matrix(
                http::StatusCode::FORBIDDEN,
                ruma::api::error::ErrorKind::UserSuspended,
                format!("{action} is not allowed while your account is suspended"),
            ));
        }
        Ok(())
    }
}

/// The error for everything a locked account tries (with `soft_logout`, so clients keep their
/// session and keys for when the lock is lifted).
pub fn locked_error() -> Error {
    Error::matrix(
        http::StatusCode::UNAUTHORIZED,
        ruma::api::error::ErrorKind::UserLocked,
        "This account has been locked",
    )
}

/// Credentials handed to a client after login or registration.
#[derive(Debug)]
pub struct NewSession {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<Duration>,
}

/// A device as `/devices` shows it.
pub use crate::storage::{
    devices::DeviceRow,
    users::{AdminFilter, AdminOrder, AdminUser},
};

pub struct Accounts {
    db: Db,
    config: Arc<Config>,
    pub uiaa: Uiaa,
    /// Wrong passwords per account (`rc_login.failed_attempts`), at login and at UIA stages
    /// alike: a guesser gains nothing by alternating, and a stolen access token cannot be used
    /// to guess the password behind it.
    failed_passwords: FailureLimiter,
    /// Recently authenticated access tokens (by hash), so a request does not cost a database
    /// round trip just to learn who sent it. Every write that ends or changes sessions clears
    /// it (`sessions_changed`); a lookup caches what it read only if no such write happened
    /// meanwhile.
    sessions: Guarded<LruCache<Vec<u8>, CachedSession>>,
    /// Devices coming and going are device list changes (end-to-end encryption).
    device_lists: Arc<DeviceListHead>,
}

#[derive(Clone)]
struct CachedSession {
    session: Session,
    expires_ts: Option<i64>,
    last_seen_ts: Option<i64>,
}

/// How many sessions the authentication cache holds.
const SESSION_CACHE_CAPACITY: usize = 1024;

/// Which users a request for an account may name: its own localpart, or its full ID on this
/// server.
pub enum UserLookup {
    Found(OwnedUserId),
    NotHere,
}

impl Accounts {
    pub fn new(db: Db, config: Arc<Config>, device_lists: Arc<DeviceListHead>) -> Self {
        let failed_passwords = FailureLimiter::new(config.rc_login.failed_attempts);
        Self {
            db,
            config,
            device_lists,
            uiaa: Uiaa::default(),
            failed_passwords,
            sessions: Guarded::new(LruCache::new(SESSION_CACHE_CAPACITY)),
        }
    }

    /// Call after committing anything that ends a session or changes a user's flags.
    fn sessions_changed(&self) {
        self.sessions.write(|c| c.clear());
    }

    /// Registration tokens reserved by UIA sessions of a previous run can never complete.
    pub async fn reset_pending_registrations(&self) -> Result<()> {
        registration_tokens::reset_pending(&self.db.write).await?;
        Ok(())
    }

    /// Gives back a reserved use of a registration token whose registration did not finish.
    pub async fn release_registration_token(&self, token: &str) -> Result<()> {
        registration_tokens::release(&self.db.write, token).await?;
        Ok(())
    }

    /// Counts a reserved use as completed (a guest upgraded with an invite code).
    pub async fn complete_registration_token(&self, token: &str) -> Result<()> {
        registration_tokens::complete(&self.db.write, token).await?;
        Ok(())
    }

    /// Releases the token reservations of UIA sessions that expired unfinished.
    pub async fn sweep_expired_uia(&self) -> Result<()> {
        for token in self.uiaa.expired_tokens() {
            registration_tokens::release(&self.db.write, &token).await?;
        }
        Ok(())
    }

    /// Checks a new password against `password_config.policy`. Every path that sets a password
    /// calls it; handlers call it early too, so a client learns before any other step.
    pub fn check_new_password(&self, password: &str) -> Result<()> {
        passwords::check_policy(&self.config.password_config.policy, password)
    }

    // ----- identifiers -------------------------------------------------------------------

    /// Checks a requested localpart against the spec's grammar for new user IDs and Synapse's
    /// reservations. Upper case is folded first, as Synapse does.
    pub fn validate_new_localpart(&self, requested: &str) -> Result<(String, OwnedUserId)> {
        let localpart = requested.to_lowercase();
        let invalid = |msg: &str| Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::InvalidUsername, msg);
        if localpart.is_empty() {
            return Err(invalid("User ID cannot be empty"));
        }
        if localpart.starts_with('_') {
            return Err(invalid("User ID may not begin with '_' (reserved for bridges)"));
        }
        if !localpart.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'))
        {
            return Err(invalid("User ID can only contain the characters a-z, 0-9, and . _ = - / +"));
        }
        if self.config.server_notices.system_mxid_localpart.as_deref() == Some(localpart.as_str()) {
            return Err(Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::Exclusive, "This user ID is reserved."));
        }
        let full = format!("@{localpart}:{}", self.config.server_name);
        if full.len() > 255 {
            return Err(invalid("User ID is too long (the full @user:server must be at most 255 bytes)"));
        }
        let user_id = UserId::parse(&full).map_err(|e| invalid(&format!("Invalid user ID: {e}")))?;
        Ok((localpart, user_id))
    }

    /// Resolves a login identifier (localpart or full MXID, any case) to a local user ID.
    pub fn resolve_identifier(&self, user: &str) -> UserLookup {
        let localpart = if let Some(rest) = user.strip_prefix('@') {
            match rest.split_once(':') {
                Some((lp, server)) if server == self.config.server_name.as_str() => lp,
                _ => return UserLookup::NotHere,
            }
        } else {
            user
        };
        match UserId::parse(format!("@{}:{}", localpart.to_lowercase(), self.config.server_name)) {
            Ok(id) => UserLookup::Found(id),
            Err(_) => UserLookup::NotHere,
        }
    }

    /// Local users whose ID or display name matches `term`: (user, display name, avatar).
    /// The user directory: the users `searcher` may find (see `user_directory` in the config)
    /// whose ID or display name contains `term`.
    pub async fn search_users(
        &self,
        searcher: &UserId,
        term: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>> {
        let everyone = self.config.user_directory.search_all_users;
        Ok(storage::users::search(&self.db.read, term, searcher.as_str(), everyone, limit).await?)
    }

    /// A filter `user` stored (`/user/{userId}/filter`), as JSON text.
    pub async fn filter(&self, user: &UserId, id: i64) -> Result<Option<String>> {
        Ok(storage::filters::get(&self.db.read, user.as_str(), id).await?)
    }

    /// Stores a filter and returns its ID.
    pub async fn create_filter(&self, user: &UserId, filter: &str) -> Result<i64> {
        Ok(storage::filters::insert(&self.db.write, user.as_str(), filter).await?)
    }

    /// A new OpenID token for `user` (spec: "OpenID"), and how long it lasts.
    pub async fn create_openid_token(&self, user: &UserId) -> Result<(String, Duration)> {
        let token = tokens::random_alphanumeric(32);
        let now = now_ms();
        let expires = now + OPENID_TOKEN_LIFETIME.as_millis() as i64;
        storage::openid::insert(&self.db.write, &tokens::hash(&token), user.as_str(), expires, now).await?;
        Ok((token, OPENID_TOKEN_LIFETIME))
    }

    /// Whose OpenID token this is, while it lasts and the account is active.
    pub async fn openid_user(&self, token: &str) -> Result<Option<OwnedUserId>> {
        let user = storage::openid::user(&self.db.read, &tokens::hash(token), now_ms()).await?;
        Ok(user.and_then(|u| OwnedUserId::try_from(u).ok()))
    }

    pub async fn is_available(&self, user_id: &UserId) -> Result<bool> {
        Ok(!storage::users::exists(&self.db.read, user_id.as_str()).await?)
    }

    // ----- registration ------------------------------------------------------------------

    /// Creates an account. `password` None makes an account that cannot log in with a password
    /// (guests). Fails with M_USER_IN_USE when the ID is taken.
    pub async fn create_user(
        &self,
        user_id: &UserId,
        password: Option<String>,
        is_admin: bool,
        is_guest: bool,
        displayname: Option<&str>,
        registration_token: Option<&str>,
    ) -> Result<()> {
        let hash = match password {
            Some(p) => {
                self.check_new_password(&p)?;
                Some(passwords::hash(p).await?)
            }
            None => None,
        };
        let mut tx = self.db.begin_write().await?;
        let inserted = storage::users::insert(
            &mut *tx,
            &NewUser {
                user_id: user_id.as_str(),
                localpart: user_id.localpart(),
                password_hash: hash.as_deref(),
                is_admin,
                is_guest,
                displayname: displayname.or(Some(user_id.localpart())),
                created_ts: now_ms(),
            },
        )
        .await?;
        if !inserted {
            return Err(user_in_use());
        }
        if let Some(token) = registration_token {
            registration_tokens::complete(&mut *tx, token).await?;
        }
        tx.commit().await?;
        tracing::info!(%user_id, is_admin, is_guest, "account created");
        Ok(())
    }

    /// A user ID for a registration that named none (and for guests): the next free number.
    pub async fn generate_user_id(&self) -> Result<OwnedUserId> {
        let n = storage::users::max_numeric_localpart(&self.db.read).await? + 1;
        UserId::parse(format!("@{n}:{}", self.config.server_name)).map_err(Error::internal)
    }

    pub async fn upgrade_guest(&self, user_id: &UserId, password: String) -> Result<()> {
        self.check_new_password(&password)?;
        let hash = passwords::hash(password).await?;
        storage::users::upgrade_guest(&self.db.write, user_id.as_str(), &hash).await?;
        self.sessions_changed();
        Ok(())
    }

    /// The flows `/register` offers under the current configuration.
    pub fn registration_flows(&self) -> Vec<Vec<AuthType>> {
        if self.config.registration_requires_token {
            vec![vec![AuthType::RegistrationToken]]
        } else {
            vec![vec![AuthType::Dummy]]
        }
    }

    /// Verifies a registration-token stage and reserves one use of the token.
    pub async fn check_registration_token(&self, token: &str) -> Result<Stage> {
        if registration_tokens::reserve(&self.db.write, token, now_ms()).await? {
            Ok(Stage::PassedWithToken(token.to_owned()))
        } else {
            Ok(Stage::Failed(ErrorKind::Unauthorized, "Invalid, expired or used-up registration token".to_owned()))
        }
    }

    pub async fn registration_token_valid(&self, token: &str) -> Result<bool> {
        Ok(registration_tokens::get(&self.db.read, token).await?.is_some_and(|t| t.is_valid(now_ms())))
    }

    // ----- login and tokens ---------------------------------------------------------------

    /// Checks a password for a login. Every failure looks the same to the client (M_FORBIDDEN),
    /// so the endpoint does not reveal which accounts exist.
    pub async fn check_password(&self, user_id: &UserId, password: &str) -> Result<bool> {
        let user = storage::users::get(&self.db.read, user_id.as_str()).await?;
        let Some(user) = user.filter(|u| !u.deactivated) else {
            // Hash anyway so a missing account costs the same time as a wrong password.
            let _ = passwords::hash(password.to_owned()).await;
            return Ok(false);
        };
        let Some(stored) = user.password_hash else { return Ok(false) };
        passwords::verify(password.to_owned(), stored).await
    }

    /// `check_password` under `rc_login.failed_attempts`: the account's failures are looked at
    /// before the password (once used up, the answer is 429 whether the guess is right, so a
    /// guesser learns nothing) and charged only when it is wrong, as Synapse does.
    pub async fn check_password_limited(&self, user_id: &UserId, password: &str) -> Result<bool> {
        self.failed_passwords.check(user_id.as_str())?;
        let ok = self.check_password(user_id, password).await?;
        if !ok {
            self.failed_passwords.record(user_id.as_str());
        }
        Ok(ok)
    }

    /// The target of an admin's lock or suspension: a local, active account, which (when
    /// `changing`) is neither the admin's own nor another admin's (spec: PUT /admin/lock and
    /// /admin/suspend).
    async fn moderation_target(&self, admin: &UserId, target: &UserId, changing: bool) -> Result<(bool, bool)> {
        if target.server_name() != self.config.server_name {
            return Err(Error::invalid_param("Only users of this server can be locked or suspended here"));
        }
        let (is_admin, deactivated, locked, suspended) = storage::users::moderation(&self.db.read, target.as_str())
            .await?
            .ok_or_else(|| Error::not_found("User not found"))?;
        if deactivated {
            return Err(Error::not_found("User not found"));
        }
        if changing && target == admin {
            return Err(Error::forbidden("You cannot lock or suspend your own account"));
        }
        if changing && is_admin {
            return Err(Error::forbidden("Server admins cannot be locked or suspended; take their admin rights first"));
        }
        Ok((locked, suspended))
    }

    /// Whether `target` is locked, as `admin` asks.
    pub async fn is_locked(&self, admin: &UserId, target: &UserId) -> Result<bool> {
        Ok(self.moderation_target(admin, target, false).await?.0)
    }

    /// Whether `target` is suspended, as `admin` asks.
    pub async fn is_suspended(&self, admin: &UserId, target: &UserId) -> Result<bool> {
        Ok(self.moderation_target(admin, target, false).await?.1)
    }

    /// Locks or unlocks `target`; their sessions stay, answering M_USER_LOCKED until unlocked.
    pub async fn set_locked(&self, admin: &UserId, target: &UserId, locked: bool) -> Result<()> {
        self.moderation_target(admin, target, true).await?;
        storage::users::set_locked(&self.db.write, target.as_str(), locked).await?;
        self.sessions_changed();
        tracing::info!(%admin, %target, locked, "account lock changed");
        Ok(())
    }

    /// Suspends or reinstates `target`.
    pub async fn set_suspended(&self, admin: &UserId, target: &UserId, suspended: bool) -> Result<()> {
        self.moderation_target(admin, target, true).await?;
        storage::users::set_suspended(&self.db.write, target.as_str(), suspended).await?;
        self.sessions_changed();
        tracing::info!(%admin, %target, suspended, "account suspension changed");
        Ok(())
    }

    pub async fn is_deactivated(&self, user_id: &UserId) -> Result<bool> {
        Ok(storage::users::get(&self.db.read, user_id.as_str()).await?.is_some_and(|u| u.deactivated))
    }

    /// Creates (or reuses) a device and issues tokens for it. With `refresh`, the access token
    /// expires and a refresh token comes with it.
    pub async fn create_session(
        &self,
        user_id: &UserId,
        device_id: Option<OwnedDeviceId>,
        display_name: Option<&str>,
        refresh: bool,
        ip: Option<&str>,
    ) -> Result<NewSession> {
        let device_id = device_id.unwrap_or_else(|| tokens::device_id().into());
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        // A locked account gets no new session by any path (spec: "Account locking").
        if storage::users::moderation(&mut *tx, user_id.as_str()).await?.is_some_and(|(_, _, locked, _)| locked) {
            return Err(locked_error());
        }
        storage::devices::upsert(&mut *tx, user_id.as_str(), device_id.as_str(), display_name, now, ip).await?;
        // A login that reuses a device ID takes over that device: its old sessions end
        // (spec: "POST /login", device_id).
        storage::tokens::delete_access_for_device(&mut *tx, user_id.as_str(), device_id.as_str()).await?;
        storage::tokens::delete_for_device(&mut *tx, user_id.as_str(), device_id.as_str()).await?;
        let issued = self.issue_tokens(&mut tx, user_id, &device_id, refresh, now, None).await?;
        tx.commit().await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        Ok(issued)
    }

    async fn issue_tokens(
        &self,
        tx: &mut sqlx::SqliteConnection,
        user_id: &UserId,
        device_id: &OwnedDeviceId,
        refresh: bool,
        now: i64,
        replaces: Option<i64>,
    ) -> Result<NewSession> {
        let access_token = tokens::generate("hat");
        let (refresh_token, refresh_id, expires_in) = if refresh {
            let rt = tokens::generate("hrt");
            let rt_expiry = self.config.refresh_token_lifetime.map(|d| now + d.0.as_millis() as i64);
            let id = storage::tokens::insert_refresh(
                &mut *tx,
                &tokens::hash(&rt),
                user_id.as_str(),
                device_id.as_str(),
                now,
                rt_expiry,
                replaces,
            )
            .await?;
            (Some(rt), Some(id), Some(self.config.refreshable_access_token_lifetime.0))
        } else {
            (None, None, None)
        };
        let expires_ts = expires_in.map(|d| now + d.as_millis() as i64);
        storage::tokens::insert_access(
            &mut *tx,
            &tokens::hash(&access_token),
            user_id.as_str(),
            device_id.as_str(),
            now,
            expires_ts,
            refresh_id,
        )
        .await?;
        Ok(NewSession {
            user_id: user_id.to_owned(),
            device_id: device_id.clone(),
            access_token,
            refresh_token,
            expires_in,
        })
    }

    /// Authenticates an access token. An expired refreshable token answers M_UNKNOWN_TOKEN with
    /// soft_logout, so the client refreshes instead of dropping its session.
    pub async fn authenticate(&self, token: &str, ip: Option<&str>, user_agent: Option<&str>) -> Result<Session> {
        let hash = tokens::hash(token);
        let now = now_ms();
        let cached = self.sessions.with(|c| c.get(&hash).cloned());
        if let Some(c) = cached {
            if c.expires_ts.is_some_and(|e| e <= now) {
                return Err(Error::unknown_token(true));
            }
            if c.last_seen_ts.is_none_or(|t| now - t > LAST_SEEN_GRANULARITY_MS) {
                storage::devices::touch(
                    &self.db.write,
                    c.session.user_id.as_str(),
                    c.session.device_id.as_str(),
                    now,
                    ip,
                    user_agent,
                )
                .await?;
                self.sessions.with(|c| {
                    if let Some(entry) = c.get_mut(&hash) {
                        entry.last_seen_ts = Some(now);
                    }
                });
            }
            return Ok(c.session);
        }
        let generation = self.sessions.generation();
        let row =
            storage::tokens::find_session(&self.db.read, &hash).await?.ok_or_else(|| Error::unknown_token(false))?;
        // The lookup was by hash; compare again in constant time so no timing difference
        // depends on how much of a guessed hash matched the index.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(row.token_hash.as_slice(), hash.as_slice())) {
            return Err(Error::unknown_token(false));
        }
        if row.deactivated {
            return Err(Error::unknown_token(false));
        }
        if row.expires_ts.is_some_and(|e| e <= now) {
            return Err(Error::unknown_token(true));
        }
        let first_use_after_refresh = row.refresh_token_id.is_some() && row.prev_refresh_id.is_some();
        if let (Some(me), Some(prev)) = (row.refresh_token_id, row.prev_refresh_id) {
            // First use of a refreshed session: the refresh token it replaced is now revoked.
            let mut conn = self.db.write.acquire().await?;
            storage::tokens::revoke_replaced(&mut conn, me, prev).await?;
            drop(conn);
            self.sessions_changed();
        }
        let mut last_seen_ts = row.last_seen_ts;
        // The first use of a token (after login, or after a restart) records the client's user
        // agent as well; later ones only every LAST_SEEN_GRANULARITY_MS.
        if user_agent.is_some() || row.last_seen_ts.is_none_or(|t| now - t > LAST_SEEN_GRANULARITY_MS) {
            storage::devices::touch(&self.db.write, &row.user_id, &row.device_id, now, ip, user_agent).await?;
            last_seen_ts = Some(now);
        }
        let session = Session {
            user_id: UserId::parse(&row.user_id).map_err(Error::internal)?,
            device_id: row.device_id.into(),
            is_admin: row.is_admin,
            is_guest: row.is_guest,
            locked: row.locked,
            suspended: row.suspended,
            shadow_banned: row.shadow_banned,
            puppet: row.hidden,
        };
        if !first_use_after_refresh {
            let entry = CachedSession { session: session.clone(), expires_ts: row.expires_ts, last_seen_ts };
            self.sessions.fill(generation, |c| {
                c.insert(hash, entry);
            });
        }
        Ok(session)
    }

    /// Exchanges a refresh token for a new pair. The old refresh token stays valid until the new
    /// pair is first used, then it and the access tokens issued with it stop working (spec:
    /// "Refreshing access tokens"), so a client that lost this response can simply retry.
    pub async fn refresh(&self, refresh_token: &str) -> Result<NewSession> {
        let hash = tokens::hash(refresh_token);
        let mut tx = self.db.begin_write().await?;
        let row = storage::tokens::find_refresh(&mut *tx, &hash).await?.ok_or_else(|| Error::unknown_token(false))?;
        let now = now_ms();
        if row.expires_ts.is_some_and(|e| e <= now) {
            storage::tokens::delete_refresh(&mut *tx, row.id).await?;
            tx.commit().await?;
            self.sessions_changed();
            return Err(Error::unknown_token(false));
        }
        let user_id = UserId::parse(&row.user_id).map_err(Error::internal)?;
        match storage::users::moderation(&mut *tx, user_id.as_str()).await? {
            None | Some((_, true, _, _)) => return Err(Error::unknown_token(false)),
            Some((_, _, true, _)) => return Err(locked_error()),
            Some(_) => {}
        }
        if let Some(prev) = row.prev_refresh_id {
            storage::tokens::revoke_replaced(&mut tx, row.id, prev).await?;
        }
        let issued = self.issue_tokens(&mut tx, &user_id, &row.device_id.into(), true, now, Some(row.id)).await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(issued)
    }

    pub async fn create_login_token(&self, user_id: &UserId) -> Result<String> {
        let token = tokens::generate("hlt");
        let expires = now_ms() + LOGIN_TOKEN_LIFETIME.as_millis() as i64;
        storage::tokens::insert_login_token(&self.db.write, &tokens::hash(&token), user_id.as_str(), expires).await?;
        Ok(token)
    }

    /// Consumes an m.login.token; `None` when unknown, used or expired.
    pub async fn take_login_token(&self, token: &str) -> Result<Option<OwnedUserId>> {
        let user = storage::tokens::take_login_token(&self.db.write, &tokens::hash(token), now_ms()).await?;
        Ok(user.and_then(|u| UserId::parse(u).ok()))
    }

    /// `/logout`: the device goes with its session (spec: "POST /logout" invalidates the device).
    pub async fn logout(&self, session: &Session) -> Result<()> {
        storage::devices::delete(&self.db.write, session.user_id.as_str(), session.device_id.as_str()).await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }

    /// `/logout/all`: every device of the user.
    pub async fn logout_all(&self, user_id: &UserId) -> Result<()> {
        storage::devices::delete_all_except(&self.db.write, user_id.as_str(), None).await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }

    // ----- account management ------------------------------------------------------------

    /// UIA for an operation on an existing account: one m.login.password stage for `session`'s
    /// user.
    pub async fn uia_password(
        &self,
        session: &Session,
        operation: &str,
        auth: Option<&ruma::api::client::uiaa::AuthData>,
    ) -> Result<Authorised> {
        use ruma::api::client::uiaa::{AuthData, UserIdentifier};
        let flows = [vec![AuthType::Password]];
        let purpose = format!("{operation} {}", session.user_id);
        let Some(auth) = auth else {
            return Err(self.uiaa.begin(&purpose, &flows));
        };
        let given = match auth {
            AuthData::Password(p) => Some(p),
            _ => None,
        };
        self.uiaa
            .step(&purpose, &flows, auth.session(), auth.auth_type(), |_stage| async move {
                let Some(p) = given else {
                    return Ok(Stage::Failed(ErrorKind::Unrecognized, "Expected an m.login.password stage".to_owned()));
                };
                let same_user = match &p.identifier {
                    UserIdentifier::Matrix(m) => {
                        matches!(self.resolve_identifier(&m.user), UserLookup::Found(u) if u == session.user_id)
                    }
                    _ => false,
                };
                if same_user && self.check_password_limited(&session.user_id, &p.password).await? {
                    Ok(Stage::Passed)
                } else {
                    Ok(Stage::Failed(ErrorKind::Forbidden, "Invalid password".to_owned()))
                }
            })
            .await
    }

    /// Sets a new password. With `logout_devices`, every other device is logged out (the
    /// spec's default), keeping `keep`.
    pub async fn change_password(
        &self,
        user_id: &UserId,
        new: String,
        logout_devices: bool,
        keep: &Session,
    ) -> Result<()> {
        self.check_new_password(&new)?;
        let hash = passwords::hash(new).await?;
        let mut tx = self.db.begin_write().await?;
        storage::users::set_password_hash(&mut *tx, user_id.as_str(), Some(&hash)).await?;
        if logout_devices {
            storage::devices::delete_all_except(&mut *tx, user_id.as_str(), Some(keep.device_id.as_str())).await?;
        }
        tx.commit().await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }

    /// Deactivates the account: no login, every device and token gone; `erase`: its messages
    /// are redacted for whoever was not in the room when they were sent.
    pub async fn deactivate(&self, user_id: &UserId, erase: bool) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        storage::users::deactivate(&mut *tx, user_id.as_str(), erase).await?;
        storage::devices::delete_all_except(&mut *tx, user_id.as_str(), None).await?;
        // Nothing the account scheduled is sent after it is gone (as Synapse).
        storage::delayed_events::cancel_all_of(&mut *tx, user_id.as_str()).await?;
        tx.commit().await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        tracing::info!(%user_id, erase, "account deactivated");
        Ok(())
    }

    // ----- administration (the dashboard) ----------------------------------------------

    /// A page of accounts for Synapse's admin API, and how many match in all.
    pub async fn admin_list(
        &self,
        filter: &storage::users::AdminFilter,
    ) -> Result<(Vec<storage::users::AdminUser>, i64)> {
        Ok(storage::users::admin_list(&self.db.read, filter).await?)
    }

    pub async fn admin_get(&self, user_id: &UserId) -> Result<Option<storage::users::AdminUser>> {
        Ok(storage::users::admin_get(&self.db.read, user_id.as_str()).await?)
    }

    /// An access token for `target`, for `admin` to act as them (Synapse's admin API): its
    /// session's device is hidden from the user's devices and from everyone's device lists.
    /// It lasts until `valid_until_ms` when given, else until logged out.
    pub async fn login_as(&self, admin: &UserId, target: &UserId, valid_until_ms: Option<i64>) -> Result<String> {
        let now = now_ms();
        let device = format!("ADMIN{}", tokens::device_id());
        let token = tokens::generate("hat");
        let mut tx = self.db.begin_write().await?;
        let name = format!("Admin session of {admin}");
        storage::devices::insert_hidden(&mut *tx, target.as_str(), &device, &name, now).await?;
        storage::tokens::insert_access(
            &mut *tx,
            &tokens::hash(&token),
            target.as_str(),
            &device,
            now,
            valid_until_ms,
            None,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%admin, %target, "an admin signed in as a user");
        Ok(token)
    }

    /// The account's recorded email addresses and phone numbers.
    pub async fn threepids(&self, user_id: &UserId) -> Result<Vec<storage::users::Threepid>> {
        Ok(storage::users::threepids(&self.db.read, user_id.as_str()).await?)
    }

    /// Records exactly these (medium, address) for the account, as Synapse's admin API does:
    /// `email` or `msisdn`; emails are kept as Synapse canonicalises them (lower case).
    pub async fn set_threepids(&self, user_id: &UserId, wanted: &[(String, String)]) -> Result<()> {
        let mut clean = Vec::with_capacity(wanted.len());
        for (medium, address) in wanted {
            let address = address.trim();
            let address = match medium.as_str() {
                "email" => match address.split_once('@') {
                    Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => {
                        format!("{}@{}", local.to_lowercase(), domain.to_lowercase())
                    }
                    _ => return Err(Error::invalid_param(format!("Unable to parse email address: {address}"))),
                },
                "msisdn" if !address.is_empty() && address.bytes().all(|b| b.is_ascii_digit()) => address.to_owned(),
                "msisdn" => return Err(Error::invalid_param(format!("A phone number is digits only: {address}"))),
                other => return Err(Error::invalid_param(format!("Unknown medium {other}: email or msisdn"))),
            };
            clean.push((medium.clone(), address));
        }
        let mut conn = self.db.acquire_write().await?;
        storage::users::set_threepids(&mut conn, user_id.as_str(), &clean, now_ms()).await?;
        Ok(())
    }

    /// The user removes one of their threepids (`/account/3pid/delete`); whether they had it.
    pub async fn delete_threepid(&self, user_id: &UserId, medium: &str, address: &str) -> Result<bool> {
        Ok(storage::users::delete_threepid(&self.db.write, user_id.as_str(), medium, address).await?)
    }

    /// The account's single sign-on identities (provider, ID).
    pub async fn external_ids(&self, user_id: &UserId) -> Result<Vec<(String, String)>> {
        Ok(storage::users::external_ids(&self.db.read, user_id.as_str()).await?)
    }

    /// Records exactly these (provider, ID); 409 when one belongs to another account (Synapse).
    pub async fn set_external_ids(&self, user_id: &UserId, wanted: &[(String, String)]) -> Result<()> {
        let mut conn = self.db.acquire_write().await?;
        if !storage::users::set_external_ids(&mut conn, user_id.as_str(), wanted).await? {
            return Err(Error::custom(http::StatusCode::CONFLICT, "M_UNKNOWN", "External id is already in use."));
        }
        Ok(())
    }

    /// The user types Synapse knows (`support`, `bot`); None is a regular account.
    pub async fn set_user_type(&self, user_id: &UserId, user_type: Option<&str>) -> Result<()> {
        Ok(storage::users::set_user_type(&self.db.write, user_id.as_str(), user_type).await?)
    }

    /// Shadow-bans the account, or lifts it (see `Session::shadow_banned`).
    pub async fn set_shadow_banned(&self, user_id: &UserId, banned: bool) -> Result<()> {
        storage::users::set_shadow_banned(&self.db.write, user_id.as_str(), banned).await?;
        self.sessions_changed();
        tracing::info!(%user_id, banned, "shadow ban changed");
        Ok(())
    }

    /// Opens a deactivated account again, with a new password or none (Synapse's admin API).
    pub async fn reactivate(&self, user_id: &UserId, password: Option<String>) -> Result<()> {
        let hash = match password {
            Some(p) => {
                self.check_new_password(&p)?;
                Some(passwords::hash(p).await?)
            }
            None => None,
        };
        storage::users::reactivate(&self.db.write, user_id.as_str(), hash.as_deref()).await?;
        self.sessions_changed();
        tracing::info!(%user_id, "account reactivated by an admin");
        Ok(())
    }

    pub async fn list_users(&self) -> Result<Vec<storage::users::UserSummary>> {
        Ok(storage::users::list_all(&self.db.read).await?)
    }

    /// Grants or removes server admin rights; false when there is no such account.
    pub async fn set_admin(&self, user_id: &UserId, admin: bool) -> Result<bool> {
        let found = storage::users::set_admin(&self.db.write, user_id.as_str(), admin).await?;
        // Cached sessions carry the flag.
        self.sessions_changed();
        Ok(found)
    }

    /// Sets a password chosen by the admin and signs the account out everywhere, as Synapse's
    /// admin API does by default: whoever had the old password loses access.
    pub async fn reset_password(&self, user_id: &UserId, new: String) -> Result<()> {
        self.set_password_as_admin(user_id, new, true).await
    }

    /// Sets a password chosen by the admin; `sign_out` ends every session of the account.
    pub async fn set_password_as_admin(&self, user_id: &UserId, new: String, sign_out: bool) -> Result<()> {
        match storage::users::get(&self.db.read, user_id.as_str()).await? {
            None => return Err(Error::not_found("No such user")),
            Some(u) if u.deactivated => return Err(Error::invalid_param("This account is deactivated")),
            Some(_) => {}
        }
        self.check_new_password(&new)?;
        let hash = passwords::hash(new).await?;
        let mut tx = self.db.begin_write().await?;
        storage::users::set_password_hash(&mut *tx, user_id.as_str(), Some(&hash)).await?;
        if sign_out {
            storage::devices::delete_all_except(&mut *tx, user_id.as_str(), None).await?;
        }
        tx.commit().await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        tracing::info!(%user_id, sign_out, "password reset by the admin");
        Ok(())
    }

    pub async fn count_active_users(&self) -> Result<i64> {
        Ok(storage::users::count_active(&self.db.read).await?)
    }

    // ----- devices -----------------------------------------------------------------------

    pub async fn devices(&self, user_id: &UserId) -> Result<Vec<DeviceRow>> {
        Ok(storage::devices::list(&self.db.read, user_id.as_str()).await?)
    }

    pub async fn device(&self, user_id: &UserId, device_id: &str) -> Result<Option<DeviceRow>> {
        Ok(storage::devices::get(&self.db.read, user_id.as_str(), device_id).await?)
    }

    /// Makes the device when it is not there (no tokens: Synapse's admin API), keeping one that is.
    pub async fn ensure_device(&self, user_id: &UserId, device_id: &str) -> Result<()> {
        if self.device(user_id, device_id).await?.is_none() {
            storage::devices::upsert(&self.db.write, user_id.as_str(), device_id, None, now_ms(), None).await?;
            self.device_lists.refresh(&self.db).await?;
        }
        Ok(())
    }

    /// Renames a device. Returns `false` when there is no such device.
    pub async fn rename_device(&self, user_id: &UserId, device_id: &str, name: Option<&str>) -> Result<bool> {
        let found = storage::devices::set_display_name(&self.db.write, user_id.as_str(), device_id, name).await?;
        self.device_lists.refresh(&self.db).await?;
        Ok(found)
    }

    /// Deletes devices (and their tokens) in one transaction; unknown IDs are ignored, as the
    /// spec says for `/delete_devices`.
    pub async fn delete_devices(&self, user_id: &UserId, device_ids: &[OwnedDeviceId]) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        for d in device_ids {
            storage::devices::delete(&mut *tx, user_id.as_str(), d.as_str()).await?;
        }
        tx.commit().await?;
        self.sessions_changed();
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }
}

pub fn user_in_use() -> Error {
    Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::UserInUse, "That user ID is already taken")
}
