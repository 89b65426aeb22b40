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

/// Downloads an item on the authenticated endpoint: its status.
async fn download(s: &TestServer, token: &str, media_id: &str) -> StatusCode {
    let url = format!("{}/_matrix/client/v1/media/download/hearth.test/{media_id}", s.base);
    s.http.get(url).bearer_auth(token).send().await.unwrap().status()
}

/// Synapse's quarantine: an item (with every other item of the same content), a room's media
/// and a user's uploads are no longer served to anyone; protected items stay out of it; the
/// user media list shows who quarantined what; releasing serves it again.
#[tokio::test]
async fn quarantined_media_is_not_served_and_protected_media_is_spared() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let spam = upload(&s, &alice, vec![9; 100]).await;
    let copy = upload(&s, &bob, vec![9; 100]).await; // the same bytes, uploaded again
    let photo = upload(&s, &alice, vec![7; 100]).await;
    let sticker = upload(&s, &alice, vec![6; 100]).await;
    let other = upload(&s, &bob, vec![5; 100]).await;
    for id in [&spam, &copy, &photo, &sticker, &other] {
        assert_eq!(download(&s, &bob, id).await, StatusCode::OK);
    }

    // One item: its copy goes with it; nothing else does.
    let (st, v) =
        s.post(&format!("/_synapse/admin/v1/media/quarantine/hearth.test/{spam}"), Some(&root), json!({})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({})));
    for id in [&spam, &copy] {
        let gone = s.get(&format!("/_matrix/client/v1/media/download/hearth.test/{id}"), Some(&alice)).await;
        assert_err(&gone, 404, "M_NOT_FOUND");
        let thumb = format!("/_matrix/client/v1/media/thumbnail/hearth.test/{id}?width=32&height=32");
        assert_eq!(s.get(&thumb, Some(&alice)).await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(download(&s, &bob, &photo).await, StatusCode::OK);
    let (_, listed) = s.get("/_synapse/admin/v1/users/@bob:hearth.test/media", Some(&root)).await;
    let bobs_copy = listed["media"].as_array().unwrap().iter().find(|m| m["media_id"] == copy.as_str()).unwrap();
    assert_eq!(bobs_copy["quarantined_by"], "@root:hearth.test", "{listed}");

    // A room's media, except the protected sticker.
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    for (i, id) in [&photo, &sticker].iter().enumerate() {
        let body = json!({"msgtype": "m.image", "body": "p.png", "url": format!("mxc://hearth.test/{id}")});
        let (st, v) =
            s.put(&format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/m{i}"), Some(&alice), body).await;
        assert_eq!(st, 200, "{v}");
    }
    let (_, media) = s.get(&format!("/_synapse/admin/v1/room/{room}/media"), Some(&root)).await;
    let expected =
        json!({"local": [format!("mxc://hearth.test/{sticker}"), format!("mxc://hearth.test/{photo}")], "remote": []});
    assert_eq!(media, expected);
    assert_eq!(s.post(&format!("/_synapse/admin/v1/media/protect/{sticker}"), Some(&root), json!({})).await.0, 200);
    let (st, v) = s.post(&format!("/_synapse/admin/v1/room/{room}/media/quarantine"), Some(&root), json!({})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"num_quarantined": 1})));
    assert_eq!(download(&s, &bob, &photo).await, StatusCode::NOT_FOUND);
    assert_eq!(download(&s, &bob, &sticker).await, StatusCode::OK, "protected");
    let (_, listed) = s
        .get("/_synapse/admin/v1/users/@alice:hearth.test/media?order_by=safe_from_quarantine&dir=b", Some(&root))
        .await;
    assert_eq!(listed["media"][0]["media_id"], sticker.as_str());
    assert_eq!(listed["media"][0]["safe_from_quarantine"], true);

    // A user's uploads.
    let (_, v) = s.post("/_synapse/admin/v1/user/@bob:hearth.test/media/quarantine", Some(&root), json!({})).await;
    // Bob's two uploads, and Alice's item with the same content as his copy (as Synapse counts).
    assert_eq!(v["num_quarantined"], 3);
    assert_eq!(download(&s, &alice, &other).await, StatusCode::NOT_FOUND);

    // Released: served again, with its copy.
    let release = format!("/_synapse/admin/v1/media/unquarantine/hearth.test/{spam}");
    assert_eq!(s.post(&release, Some(&root), json!({})).await.0, 200);
    assert_eq!(download(&s, &bob, &spam).await, StatusCode::OK);
    assert_eq!(download(&s, &bob, &copy).await, StatusCode::OK);
    assert_eq!(s.post(&format!("/_synapse/admin/v1/media/unprotect/{sticker}"), Some(&root), json!({})).await.0, 200);
    let (_, v) =
        s.post(&format!("/_synapse/admin/v1/media/quarantine/hearth.test/{sticker}"), Some(&root), json!({})).await;
    assert_eq!(v, json!({}));
    assert_eq!(download(&s, &bob, &sticker).await, StatusCode::NOT_FOUND, "no longer protected");

    // Refusals.
    let q = format!("/_synapse/admin/v1/media/quarantine/hearth.test/{photo}");
    assert_err(&s.post(&q, Some(&alice), json!({})).await, 403, "M_FORBIDDEN");
    assert_err(&s.get(&format!("/_synapse/admin/v1/room/{room}/media"), Some(&alice)).await, 403, "M_FORBIDDEN");
    // As Synapse, a room that does not exist (or is no room ID) has no media: nothing to
    // quarantine and empty lists, not an error.
    let (st, v) = s.post("/_synapse/admin/v1/room/nope/media/quarantine", Some(&root), json!({})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({ "num_quarantined": 0 })));
    for missing in ["!gone:hearth.test", "nope"] {
        let (st, v) = s.get(&format!("/_synapse/admin/v1/room/{missing}/media"), Some(&root)).await;
        assert_eq!((st, v), (StatusCode::OK, json!({ "local": [], "remote": [] })));
    }
}
