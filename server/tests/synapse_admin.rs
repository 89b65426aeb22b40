//! The Synapse-compatible admin API: shared-secret registration and registration tokens.

mod common;

use common::{TestServer, assert_err};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

fn mac(secret: &str, nonce: &str, user: &str, pw: &str, admin: bool) -> String {
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(format!("{nonce}\0{user}\0{pw}\0{}", if admin { "admin" } else { "notadmin" }).as_bytes());
    hex::encode(m.finalize().into_bytes())
}

async fn shared_secret_register(s: &TestServer, user: &str, admin: bool) -> (reqwest::StatusCode, Value) {
    let secret = s.running.as_ref().unwrap().registration_shared_secret().to_owned();
    let (_, n) = s.get("/_synapse/admin/v1/register", None).await;
    let nonce = n["nonce"].as_str().unwrap();
    s.post(
        "/_synapse/admin/v1/register",
        None,
        json!({"nonce": nonce, "username": user, "password": "pw-long-enough", "admin": admin, "mac": mac(&secret, nonce, user, "pw-long-enough", admin)}),
    )
    .await
}

#[tokio::test]
async fn shared_secret_registration_works_and_nonces_are_single_use() {
    let s = TestServer::start_with(|c| {
        c.enable_registration = false;
        c.enable_registration_without_verification = false;
    })
    .await;
    let (st, v) = shared_secret_register(&s, "admin", true).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user_id"], "@admin:hearth.test");
    assert_eq!(v["home_server"], "hearth.test");
    assert_eq!(s.login("admin", "pw-long-enough").await.0, 200);

    // Replaying a nonce fails, a bad MAC fails, and neither creates anyone.
    let secret = s.running.as_ref().unwrap().registration_shared_secret().to_owned();
    let (_, n) = s.get("/_synapse/admin/v1/register", None).await;
    let nonce = n["nonce"].as_str().unwrap();
    let body = json!({"nonce": nonce, "username": "bob", "password": "pw-long-enough", "admin": false, "mac": mac("wrong", nonce, "bob", "pw-long-enough", false)});
    assert_err(&s.post("/_synapse/admin/v1/register", None, body).await, 403, "M_FORBIDDEN");
    let body = json!({"nonce": nonce, "username": "bob", "password": "pw-long-enough", "admin": false, "mac": mac(&secret, nonce, "bob", "pw-long-enough", false)});
    assert_err(&s.post("/_synapse/admin/v1/register", None, body).await, 400, "M_INVALID_PARAM");
    assert_err(&s.login("bob", "pw-long-enough").await, 403, "M_FORBIDDEN");
    // A MAC for a non-admin cannot be turned into an admin registration.
    let (_, n) = s.get("/_synapse/admin/v1/register", None).await;
    let nonce = n["nonce"].as_str().unwrap();
    let body = json!({"nonce": nonce, "username": "bob", "password": "pw-long-enough", "admin": true, "mac": mac(&secret, nonce, "bob", "pw-long-enough", false)});
    assert_err(&s.post("/_synapse/admin/v1/register", None, body).await, 403, "M_FORBIDDEN");
    assert_err(&s.post("/_synapse/admin/v1/register", None, json!({"nonce": "x"})).await, 400, "M_MISSING_PARAM");
}

#[tokio::test]
async fn registration_token_admin_api() {
    let s = TestServer::start().await;
    let (_, admin) = shared_secret_register(&s, "root", true).await;
    let admin = admin["access_token"].as_str().unwrap();
    let (_, user) = shared_secret_register(&s, "plain", false).await;
    let user = user["access_token"].as_str().unwrap();
    const BASE: &str = "/_synapse/admin/v1/registration_tokens";

    assert_err(&s.get(BASE, None).await, 401, "M_MISSING_TOKEN");
    assert_err(&s.get(BASE, Some(user)).await, 403, "M_FORBIDDEN");

    let (st, t) = s.post(&format!("{BASE}/new"), Some(admin), json!({"token": "family", "uses_allowed": 5})).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t, json!({"token": "family", "uses_allowed": 5, "pending": 0, "completed": 0, "expiry_time": null}));
    assert_err(&s.post(&format!("{BASE}/new"), Some(admin), json!({"token": "family"})).await, 400, "M_INVALID_PARAM");
    assert_err(
        &s.post(&format!("{BASE}/new"), Some(admin), json!({"token": "bad token!"})).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&s.post(&format!("{BASE}/new"), Some(admin), json!({"uses_allowed": -1})).await, 400, "M_INVALID_PARAM");
    assert_err(&s.post(&format!("{BASE}/new"), Some(admin), json!({"uses_allowed": "many"})).await, 400, "M_BAD_JSON");
    let (_, generated) = s.post(&format!("{BASE}/new"), Some(admin), json!({"length": 8})).await;
    assert_eq!(generated["token"].as_str().unwrap().len(), 8);

    let (_, list) = s.get(BASE, Some(admin)).await;
    assert_eq!(list["registration_tokens"].as_array().unwrap().len(), 2);

    // PUT: change uses, then clear the limit with null; an absent field is left alone.
    let (st, t) = s.put(&format!("{BASE}/family"), Some(admin), json!({"uses_allowed": 0})).await;
    assert_eq!((st.as_u16(), t["uses_allowed"].clone()), (200, json!(0)));
    let (_, invalid) = s.get(&format!("{BASE}?valid=false"), Some(admin)).await;
    assert_eq!(invalid["registration_tokens"][0]["token"], "family");
    let (_, t) = s.put(&format!("{BASE}/family"), Some(admin), json!({"uses_allowed": null})).await;
    assert_eq!(t["uses_allowed"], Value::Null);
    let (_, valid) = s.get(&format!("{BASE}?valid=true"), Some(admin)).await;
    assert_eq!(valid["registration_tokens"].as_array().unwrap().len(), 2);
    assert_err(&s.put(&format!("{BASE}/missing"), Some(admin), json!({})).await, 404, "M_NOT_FOUND");

    let (st, _) = s.call(reqwest::Method::DELETE, &format!("{BASE}/family"), Some(admin), None).await;
    assert_eq!(st, 200);
    assert_err(&s.get(&format!("{BASE}/family"), Some(admin)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.call(reqwest::Method::DELETE, &format!("{BASE}/family"), Some(admin), None).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get(&format!("{BASE}?valid=maybe"), Some(admin)).await, 400, "M_INVALID_PARAM");
}
