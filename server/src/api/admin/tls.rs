//! /_hearth/admin/v1/tls: what the dashboard shows of built-in HTTPS: the certificate served
//! (names, validity, whether it is the stand-in served until the ACME CA issues one) and, with
//! `[acme]`, how getting and renewing it goes (the last error in plain words, failures in a
//! row, when the next attempt is due).

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    service::{AppState, outbound::IpPolicy, setup},
};

/// POST /_hearth/admin/v1/tls/check: what the CA needs from the DNS and the router, checked
/// from here (the wizard's "check again"). When everything passes and there is no certificate
/// from the CA yet, Hearth asks for one at once instead of waiting for its next attempt.
pub async fn check_tls(State(s): State<AppState>) -> Result<Json<Value>> {
    let (Some(acme), Some(certificates)) = (&s.acme, &s.tls) else {
        return Err(Error::invalid_param(
            "Hearth does not get its own certificate: choose \"Hearth handles HTTPS itself\" in the setup, or enable [acme]",
        ));
    };
    let host = s.config.acme_domains().into_iter().next().unwrap_or_default();
    let tls_port = s.config.listeners.iter().find(|l| l.tls).map_or(443, |l| l.port);
    let policy = IpPolicy::from_config(&s.config).map_err(Error::internal)?;
    let checks =
        setup::https_checks(&host, s.config.acme.port, tls_port, &policy, acme, certificates, &s.discovery).await;
    let trying_now = checks.iter().all(|c| c.result == "pass") && acme.try_now();
    Ok(Json(json!({ "host": host, "checks": checks, "trying_now": trying_now })))
}

pub async fn get_tls(State(s): State<AppState>) -> Json<Value> {
    let certificate = s.tls.as_ref().map(|c| {
        let now = c.current();
        json!({
            "names": now.names,
            "not_before_ms": now.not_before * 1000,
            "not_after_ms": now.not_after * 1000,
            "placeholder": now.placeholder,
        })
    });
    let acme = s.acme.as_ref().map(|a| {
        let st = a.status();
        json!({
            "url": s.config.acme.url,
            "domains": s.config.acme_domains(),
            "last_attempt_ms": st.last_attempt_ms,
            "last_error": st.last_error,
            "failures": st.failures,
            "next_attempt_ms": st.next_attempt_ms,
        })
    });
    Json(json!({ "enabled": certificate.is_some(), "certificate": certificate, "acme": acme }))
}
