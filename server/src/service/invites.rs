//! Invites: how the person running Hearth brings the family in. An invite is a registration
//! token (the same invite codes Matrix apps accept at sign-up, and Synapse's admin API manages)
//! shown as a link to Hearth's own sign-up page, `/_hearth/invite/<code>`, which creates the
//! account directly. Element X cannot register accounts itself, so the page is the way in.
//!
//! An invite from the admin is honoured whatever `enable_registration` says: closed
//! registration closes the door to strangers, not to people the admin invited.

use std::sync::Arc;

use ruma::OwnedUserId;
use serde::Serialize;

use http::StatusCode;
use ruma::api::error::ErrorKind;

pub use crate::storage::registration_tokens::RegistrationToken;
use crate::{
    error::{Error, Result},
    service::{accounts::Accounts, tokens},
    storage::{Db, now_ms, registration_tokens as store},
};

/// Shortest code generated on request (Synapse allows 1).
pub const MIN_GENERATED_LENGTH: usize = 8;
/// Codes tried when generating one clashes with an existing code.
const GENERATE_ATTEMPTS: usize = 8;

/// A registration token to create (Synapse's `POST /registration_tokens/new`).
#[derive(Debug, Default)]
pub struct NewToken {
    pub token: Option<String>,
    pub length: Option<usize>,
    pub uses_allowed: Option<i64>,
    pub expiry_time: Option<i64>,
}

fn check_uses(v: Option<i64>) -> Result<()> {
    if v.is_some_and(|n| n < 0) {
        return Err(Error::invalid_param("uses_allowed must be a non-negative integer or null"));
    }
    Ok(())
}

fn check_expiry(v: Option<i64>) -> Result<()> {
    if v.is_some_and(|t| t < now_ms()) {
        return Err(Error::invalid_param("expiry_time must not be in the past"));
    }
    Ok(())
}

pub struct Invites {
    db: Db,
    public_baseurl: Arc<str>,
}

/// An invite as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct Invite {
    pub code: String,
    pub link: String,
    pub uses_allowed: Option<i64>,
    pub uses: i64,
    pub expiry_time: Option<i64>,
    pub valid: bool,
    /// The link as a QR code (an SVG document), for a phone's camera.
    pub qr_svg: String,
}

/// Why an invite cannot be used, in words for the invitee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Valid,
    UsedUp,
    Expired,
    Unknown,
}

impl Invites {
    pub fn new(db: Db, public_baseurl: &str) -> Self {
        Self { db, public_baseurl: public_baseurl.trim_end_matches('/').into() }
    }

    fn link(&self, code: &str) -> String {
        format!("{}/_hearth/invite/{code}", self.public_baseurl)
    }

    fn view(&self, t: store::RegistrationToken, now: i64) -> Invite {
        let link = self.link(&t.token);
        Invite {
            qr_svg: qr_svg(&link),
            link,
            valid: t.is_valid(now),
            uses: t.completed,
            uses_allowed: t.uses_allowed,
            expiry_time: t.expiry_time,
            code: t.token,
        }
    }

    pub async fn list(&self) -> Result<Vec<Invite>> {
        let now = now_ms();
        Ok(store::list(&self.db.read).await?.into_iter().map(|t| self.view(t, now)).collect())
    }

    /// A new invite for `uses_allowed` people (None: any number) until `expiry_time` (ms).
    pub async fn create(&self, uses_allowed: Option<i64>, expiry_time: Option<i64>) -> Result<Invite> {
        if uses_allowed.is_some_and(|n| n < 1) {
            return Err(Error::invalid_param("uses_allowed must be at least 1"));
        }
        if expiry_time.is_some_and(|t| t <= now_ms()) {
            return Err(Error::invalid_param("expiry_time must be in the future"));
        }
        // 12 letters and digits: unguessable, and still short enough to read out on the phone.
        let t = self.insert_generated(12, uses_allowed, expiry_time).await?;
        Ok(self.view(t, now_ms()))
    }

    /// A new code of `length` random letters and digits. A clash with an existing code is
    /// tried again a few times, not forever.
    async fn insert_generated(
        &self,
        length: usize,
        uses: Option<i64>,
        expiry: Option<i64>,
    ) -> Result<RegistrationToken> {
        for _ in 0..GENERATE_ATTEMPTS {
            let code = tokens::random_alphanumeric(length);
            if store::insert(&self.db.write, &code, uses, expiry).await? {
                return self.token(&code).await;
            }
        }
        Err(Error::matrix(
            StatusCode::CONFLICT,
            ErrorKind::Unknown,
            "No unused code of that length could be found; ask for a longer one",
        ))
    }

    // ----- registration tokens, as Synapse's admin API shows them ------------------------

    /// Every token, or only the valid (`Some(true)`) or invalid ones.
    pub async fn tokens(&self, valid: Option<bool>) -> Result<Vec<RegistrationToken>> {
        let now = now_ms();
        let all = store::list(&self.db.read).await?;
        Ok(all.into_iter().filter(|t| valid.is_none_or(|v| t.is_valid(now) == v)).collect())
    }

    pub async fn token(&self, token: &str) -> Result<RegistrationToken> {
        store::get(&self.db.read, token).await?.ok_or_else(|| Error::not_found("No such registration token"))
    }

    /// A token the admin chose (1 to 64 characters of Synapse's alphabet), or a generated one of
    /// `length` characters (16 when unset). Generated codes are at least
    /// `MIN_GENERATED_LENGTH` long: a short one is found by guessing, and an admin who wants a
    /// short code can choose it.
    pub async fn create_token(&self, new: NewToken) -> Result<RegistrationToken> {
        check_uses(new.uses_allowed)?;
        check_expiry(new.expiry_time)?;
        let Some(chosen) = new.token else {
            let length = new.length.unwrap_or(16);
            if !(MIN_GENERATED_LENGTH..=64).contains(&length) {
                return Err(Error::invalid_param(format!(
                    "length must be between {MIN_GENERATED_LENGTH} and 64 (shorter codes can be guessed; choose one with `token` instead)"
                )));
            }
            return self.insert_generated(length, new.uses_allowed, new.expiry_time).await;
        };
        if chosen.is_empty()
            || chosen.len() > 64
            || !chosen.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        {
            return Err(Error::invalid_param("token must be 1 to 64 characters from A-Z, a-z, 0-9 and . _ ~ -"));
        }
        if !store::insert(&self.db.write, &chosen, new.uses_allowed, new.expiry_time).await? {
            return Err(Error::invalid_param(format!("Token already exists: {chosen}")));
        }
        self.token(&chosen).await
    }

    /// Changes a token's limits: `None` leaves a field, `Some(None)` clears it.
    pub async fn update_token(
        &self,
        token: &str,
        uses_allowed: Option<Option<i64>>,
        expiry_time: Option<Option<i64>>,
    ) -> Result<RegistrationToken> {
        check_uses(uses_allowed.flatten())?;
        check_expiry(expiry_time.flatten())?;
        if !store::update(&self.db.write, token, uses_allowed, expiry_time).await? {
            return Err(Error::not_found("No such registration token"));
        }
        self.token(token).await
    }

    pub async fn delete_token(&self, token: &str) -> Result<()> {
        if !store::delete(&self.db.write, token).await? {
            return Err(Error::not_found("No such registration token"));
        }
        Ok(())
    }

    pub async fn delete(&self, code: &str) -> Result<()> {
        if !store::delete(&self.db.write, code).await? {
            return Err(Error::not_found("No such invite"));
        }
        Ok(())
    }

    pub async fn state(&self, code: &str) -> Result<InviteState> {
        let now = now_ms();
        Ok(match store::get(&self.db.read, code).await? {
            None => InviteState::Unknown,
            Some(t) if t.expiry_time.is_some_and(|e| e <= now) => InviteState::Expired,
            Some(t) if !t.is_valid(now) => InviteState::UsedUp,
            Some(_) => InviteState::Valid,
        })
    }

    /// Creates the invitee's account. The use is reserved first (atomically, so two people
    /// racing for the last use cannot both get it) and given back if the account cannot be made.
    pub async fn sign_up(
        &self,
        accounts: &Accounts,
        code: &str,
        username: &str,
        password: String,
    ) -> Result<OwnedUserId> {
        let state = self.state(code).await?;
        if state != InviteState::Valid {
            return Err(invite_error(state));
        }
        let (_, user_id) = accounts.validate_new_localpart(username)?;
        accounts.check_new_password(&password)?;
        if !accounts.is_available(&user_id).await? {
            return Err(crate::service::accounts::user_in_use());
        }
        if !store::reserve(&self.db.write, code, now_ms()).await? {
            return Err(invite_error(InviteState::UsedUp));
        }
        match accounts.create_user(&user_id, Some(password), false, false, None, Some(code)).await {
            Ok(()) => Ok(user_id),
            Err(e) => {
                store::release(&self.db.write, code).await?;
                Err(e)
            }
        }
    }
}

/// A QR code of `text` as SVG; empty if the text is too long for a QR code.
pub fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
        Err(_) => String::new(),
    }
}

pub fn invite_error(state: InviteState) -> Error {
    match state {
        InviteState::Valid => Error::internal("a valid invite is not an error"),
        InviteState::UsedUp => Error::forbidden("This invite has been used up. Ask for a new one."),
        InviteState::Expired => Error::forbidden("This invite has expired. Ask for a new one."),
        InviteState::Unknown => Error::not_found("This invite does not exist. Check the link, or ask for a new one."),
    }
}
