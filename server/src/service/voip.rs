//! TURN credentials for calls (spec: "Voice over IP", `GET /voip/turnServer`), made as Synapse
//! makes them: with a secret shared with the TURN server, each user gets a username of
//! `<expiry>:<user ID>` and a password that is the base64 HMAC-SHA1 of it under the secret
//! (the TURN REST API that coturn's `use-auth-secret` checks); or fixed credentials.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use ruma::UserId;

use crate::config::Config;

/// What a client gets to reach the TURN servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    pub uris: Vec<String>,
    pub ttl: Duration,
}

/// The credentials for `user` at `now_ms`, or None when no TURN server is configured.
pub fn turn_credentials(config: &Config, user: &UserId, now_ms: u64) -> Option<TurnCredentials> {
    if config.turn_uris.is_empty() {
        return None;
    }
    let ttl = config.turn_user_lifetime.0;
    let (username, password) = match (&config.turn_shared_secret, &config.turn_username, &config.turn_password) {
        (Some(secret), _, _) => {
            let expiry = (now_ms + ttl.as_millis() as u64) / 1000;
            let username = format!("{expiry}:{user}");
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).ok()?;
            mac.update(username.as_bytes());
            (username, STANDARD.encode(mac.finalize().into_bytes()))
        }
        (None, Some(name), Some(password)) => (name.clone(), password.clone()),
        _ => return None,
    };
    Some(TurnCredentials { username, password, uris: config.turn_uris.clone(), ttl })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_secret_credentials_are_the_turn_rest_api_ones() {
        let mut c = Config { turn_uris: vec!["turn:t.example:3478".into()], ..Config::default() };
        let user = UserId::parse("@a:h.test").unwrap();
        assert_eq!(turn_credentials(&c, &user, 0), None, "URIs without any credentials give nothing");
        c.turn_shared_secret = Some("s3cret".into());
        let creds = turn_credentials(&c, &user, 1_000_000).unwrap();
        assert_eq!(creds.username, "4600:@a:h.test", "expiry = now + one hour, in seconds");
        // `printf 4600:@a:h.test | openssl dgst -sha1 -hmac s3cret -binary | base64`
        assert_eq!(creds.password, "9xGqEc/aej4DlGllIEvgrljD52g=");
        assert_eq!(creds.ttl, Duration::from_secs(3600));
    }
}
