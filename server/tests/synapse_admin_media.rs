//! Synapse's media admin API against the real server: a user's media listed, ordered, paged and
//! deleted; media deleted by ID and by last use and size (avatars kept unless asked), with the
//! files gone from disk and nothing else touched; the remote media cache purged; refusals.

mod common;

use common::{TestServer, assert_err};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn upload(s: &TestServer, token: &str, bytes: Vec<u8>) -> String {
    let (st, v) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload?filename=f.bin", Some(token), bytes).await;
    assert_eq!(st, 200, "{v}");
    v["content_uri"].as_str().unwrap().trim_start_matches("mxc://hearth.test/").to_owned()
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().map_or_else(|| m["media_id"].as_str().unwrap().to_owned(), str::to_owned))
        .collect()
}

#[tokio::test]
async fn media_are_listed_and_deleted_by_user_id_age_and_size() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let small = upload(&s, &alice, vec![1; 10]).await;
    let avatar = upload(&s, &alice, vec![2; 2000]).await;
    let medium = upload(&s, &alice, vec![3; 300]).await;
    let bobs = upload(&s, &bob, vec![4; 50]).await;
    let (st, _) = s
        .put(
            "/_matrix/client/v3/profile/@alice:hearth.test/avatar_url",
            Some(&alice),
            json!({"avatar_url": format!("mxc://hearth.test/{avatar}")}),
        )
        .await;
    assert_eq!(st, 200);
    let store = s.running.as_ref().unwrap().config().data_dir().join("media");
    let files = || common::files_under(&store).into_iter().filter(|p| !p.starts_with(store.join("tmp"))).count();
    assert_eq!(files(), 4);
    let downloads = |id: &str| {
        let (s, alice, id) = (&s, alice.clone(), id.to_owned());
        async move {
            s.http
                .get(format!("{}/_matrix/client/v1/media/download/hearth.test/{id}", s.base))
                .bearer_auth(&alice)
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    // A user's media.
    let list = "/_synapse/admin/v1/users/@alice:hearth.test/media";
    let (st, all) = s.get(list, Some(&root)).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!((ids(&all, "media"), &all["total"]), (vec![small.clone(), avatar.clone(), medium.clone()], &json!(3)));
    let first = &all["media"][0];
    assert_eq!(
        (&first["media_length"], &first["upload_name"], &first["media_type"]),
        (&json!(10), &json!("f.bin"), &Value::Null), // the upload named no type
        "{first}"
    );
    let (_, big) = s.get(&format!("{list}?order_by=media_length&dir=b&limit=2"), Some(&root)).await;
    assert_eq!((ids(&big, "media"), &big["next_token"]), (vec![avatar.clone(), medium.clone()], &json!(2)));
    assert_err(&s.get(&format!("{list}?order_by=colour"), Some(&root)).await, 400, "M_INVALID_PARAM");
    assert_err(&s.get(list, Some(&alice)).await, 403, "M_FORBIDDEN");
    assert_err(&s.get("/_synapse/admin/v1/users/@nobody:hearth.test/media", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get("/_synapse/admin/v1/users/@alice:elsewhere.test/media", Some(&root)).await, 400, "M_UNKNOWN");

    // By ID.
    let one = format!("/_synapse/admin/v1/media/hearth.test/{small}");
    let (st, v) = s.delete_call(&one, Some(&root)).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"deleted_media": [small], "total": 1})));
    assert_eq!(downloads(&small).await, 404);
    assert_eq!(files(), 3, "its file is gone");
    assert_err(&s.delete_call(&one, Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.delete_call(&format!("/_synapse/admin/v1/media/elsewhere.test/{medium}"), Some(&root)).await,
        400,
        "M_UNKNOWN",
    );

    // By last use and size: the avatar stays unless asked.
    let old = |q: String| {
        let (s, root) = (&s, root.clone());
        async move { s.post(&format!("/_synapse/admin/v1/media/delete?{q}"), Some(&root), json!({})).await }
    };
    assert_err(&old(String::new()).await, 400, "M_MISSING_PARAM");
    assert_err(&old("before_ts=1700000000".to_owned()).await, 400, "M_INVALID_PARAM");
    let later = hearth_server_now() + 60_000;
    let (st, v) = old(format!("before_ts={later}&size_gt=100")).await;
    assert_eq!(
        (st, v),
        (StatusCode::OK, json!({"deleted_media": [medium], "total": 1})),
        "bob's 50 bytes and the avatar stay"
    );
    assert_eq!((downloads(&avatar).await, downloads(&bobs).await), (StatusCode::OK, StatusCode::OK));
    let (_, v) = old(format!("before_ts={later}&size_gt=1000&keep_profiles=false")).await;
    assert_eq!(v, json!({"deleted_media": [avatar], "total": 1}));
    assert_eq!(files(), 1);
    let (st, _) = s
        .post(&format!("/_synapse/admin/v1/media/elsewhere.test/delete?before_ts={later}"), Some(&root), json!({}))
        .await;
    assert_eq!(st, 400);

    // A user's media, all of them.
    let (_, v) = s.delete_call("/_synapse/admin/v1/users/@bob:hearth.test/media", Some(&root)).await;
    assert_eq!(v, json!({"deleted_media": [bobs], "total": 1}));
    assert_eq!(files(), 0);

    // Other servers' media: none fetched here, none dropped.
    let (st, v) =
        s.post(&format!("/_synapse/admin/v1/purge_media_cache?before_ts={later}"), Some(&root), json!({})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"deleted": 0})));
    assert_err(&s.post("/_synapse/admin/v1/purge_media_cache", Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
}

fn hearth_server_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
