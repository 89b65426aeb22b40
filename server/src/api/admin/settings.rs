//! GET/PUT /_hearth/admin/v1/settings: the settings the dashboard changes (registration policy,
//! public address). They are stored in the database, go over homeserver.toml, and apply when
//! the server restarts, which it does right after a change (same addresses, same admin link).

use axum::{Json as AxumJson, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config::{Config, RegistrationPolicy},
    error::{Error, Result},
    http::json::Json,
    service::AppState,
};

/// GET /_hearth/admin/v1/settings
pub async fn get_settings(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    let stored = crate::service::setup::settings(&s.db).await?;
    Ok(AxumJson(json!({
        "registration": s.config.registration_policy(),
        "public_baseurl": s.config.public_baseurl(),
        "support_page": s.config.support_page,
        "admin_email": s.config.admin_contact.as_deref().and_then(|c| c.strip_prefix("mailto:")),
        "stored": stored,
    })))
}

#[derive(Deserialize)]
pub struct Body {
    registration: Option<String>,
    public_baseurl: Option<String>,
    /// A page with help for the server's users ("" removes it).
    support_page: Option<String>,
    /// The admin's email address, for users who need help ("" removes it).
    admin_email: Option<String>,
    /// Open registration lets spam bots in: the dashboard asks the admin to confirm it.
    #[serde(default)]
    confirm_open_registration: bool,
}

/// A registration policy as the dashboard and the wizard take it (`field` names the JSON key in
/// errors): open registration only when the admin confirmed it.
pub(super) fn registration_policy(field: &str, raw: &str, confirmed_open: bool) -> Result<RegistrationPolicy> {
    let policy = RegistrationPolicy::parse(raw)
        .ok_or_else(|| Error::invalid_param(format!("{field}: `{raw}` is not invite, token or open")))?;
    if policy == RegistrationPolicy::Open && !confirmed_open {
        return Err(Error::invalid_param(
            "Open registration lets anyone on the internet, spam bots included, create accounts here. \
             Confirm it (confirm_open_registration) or choose invite or token",
        ));
    }
    Ok(policy)
}

/// A public base URL checked the way the file's value is (so the restart that applies it cannot
/// fail on it), in its normalised form.
pub(super) fn checked_base_url(s: &AppState, url: &str) -> Result<String> {
    let probe = Config { public_baseurl: Some(url.trim().to_owned()), ..(*s.config).clone() };
    Ok(probe.validate().map_err(|e| Error::invalid_param(e.to_string()))?.public_baseurl())
}

/// `name@domain.tld`, without spaces or anything a mailto: URI would need escaped.
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && local.chars().all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+-/=^_`{|}~".contains(c))
        && crate::service::reverse_proxy::valid_host(domain)
        && domain.contains('.')
}

/// PUT /_hearth/admin/v1/settings
pub async fn put_settings(State(s): State<AppState>, Json(body): Json<Body>) -> Result<AxumJson<Value>> {
    let mut changes = Vec::new();
    if let Some(r) = &body.registration {
        let policy = registration_policy("registration", r, body.confirm_open_registration)?;
        changes.push(("registration", json!(policy.as_str())));
    }
    if let Some(url) = &body.public_baseurl {
        changes.push(("public_baseurl", json!(checked_base_url(&s, url)?)));
    }
    if let Some(page) = &body.support_page {
        let page = page.trim();
        let value = if page.is_empty() {
            Value::Null
        } else if url::Url::parse(page).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) {
            json!(page)
        } else {
            return Err(Error::invalid_param(format!("support_page: `{page}` is not an http(s) address")));
        };
        changes.push(("support_page", value));
    }
    if let Some(email) = &body.admin_email {
        let email = email.trim();
        let value = if email.is_empty() {
            Value::Null
        } else if valid_email(email) {
            json!(format!("mailto:{email}"))
        } else {
            return Err(Error::invalid_param(format!("admin_email: `{email}` is not an email address")));
        };
        changes.push(("admin_contact", value));
    }
    if changes.is_empty() {
        return Err(Error::missing_param("Give registration, public_baseurl, support_page or admin_email"));
    }
    for (key, value) in &changes {
        crate::service::setup::store(&s.db, key, value).await?;
    }
    tracing::info!(?changes, "settings changed in the dashboard; restarting to apply them");
    s.restart.notify_one();
    Ok(AxumJson(json!({ "restart": true })))
}
