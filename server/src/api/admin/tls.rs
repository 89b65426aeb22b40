//! /_hearth/admin/v1/tls: what the dashboard shows of built-in HTTPS: the certificate served
//! (names, validity, whether it is the stand-in served until the ACME CA issues one) and, with
//! `[acme]`, how getting and renewing it goes (the last error in plain words, failures in a
//! row, when the next attempt is due).

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::service::AppState;

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
