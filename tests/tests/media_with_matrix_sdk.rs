//! Photos and files through the `matrix-sdk` crate (what Element X is built on): an attachment
//! sent in a room reaches the other member byte for byte, with a thumbnail; in an encrypted room
//! the server only ever holds ciphertext, and the other member decrypts it.

use hearth_blackbox::{family, photo, room_with_bob, signed_in};
use matrix_sdk::{
    Client,
    attachment::AttachmentConfig,
    config::SyncSettings,
    media::{MediaFormat, MediaRequestParameters, MediaThumbnailSettings},
    room::MessagesOptions,
    ruma::{
        OwnedRoomId, UInt,
        api::client::media::get_content_thumbnail::v3::Method,
        events::{
            AnySyncMessageLikeEvent, AnySyncTimelineEvent,
            room::{MediaSource, message::MessageType},
        },
    },
};

/// The image messages Bob can read in the room, newest first.
async fn images(bob: &Client, room: &OwnedRoomId) -> Vec<(String, MediaSource)> {
    bob.sync_once(SyncSettings::default()).await.unwrap();
    let room = bob.get_room(room).unwrap();
    room.messages(MessagesOptions::backward())
        .await
        .unwrap()
        .chunk
        .iter()
        .filter_map(|e| match e.raw().deserialize() {
            Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(m))) => {
                match &m.as_original()?.content.msgtype {
                    MessageType::Image(i) => Some((i.body.clone(), i.source.clone())),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_photo_sent_in_a_room_reaches_the_other_member_with_a_thumbnail() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    let room_id = room_with_bob(&alice, &bob, false).await;
    let data = photo(900, 600);
    alice
        .get_room(&room_id)
        .unwrap()
        .send_attachment("garden.png", &mime::IMAGE_PNG, data.clone(), AttachmentConfig::new())
        .await
        .expect("alice sends the photo");

    let got = images(&bob, &room_id).await;
    assert_eq!(got.len(), 1);
    let (body, source) = &got[0];
    assert_eq!(body, "garden.png");
    assert!(matches!(source, MediaSource::Plain(_)));
    // New media is only served on the authenticated endpoints, so this download also shows the
    // client found them (from v1.11 in /versions).
    let file = bob
        .media()
        .get_media_content(&MediaRequestParameters { source: source.clone(), format: MediaFormat::File }, false)
        .await
        .expect("bob downloads the photo");
    assert_eq!(file, data);

    let thumb = bob
        .media()
        .get_media_content(
            &MediaRequestParameters {
                source: source.clone(),
                format: MediaFormat::Thumbnail(MediaThumbnailSettings::with_method(
                    Method::Scale,
                    UInt::from(300u32),
                    UInt::from(200u32),
                )),
            },
            false,
        )
        .await
        .expect("bob gets a thumbnail");
    let img = image::load_from_memory(&thumb).expect("the thumbnail is an image");
    // 300x200 rounds up to the spec's 320x240 "scale" size; the 3:2 photo fits it as 320x213.
    assert_eq!((img.width(), img.height()), (320, 213));

    // A plain upload through the client's media API too.
    let uploaded = alice.media().upload(&mime::TEXT_PLAIN, b"recipe".to_vec(), None).await.expect("upload");
    let back = bob
        .media()
        .get_media_content(
            &MediaRequestParameters { source: MediaSource::Plain(uploaded.content_uri), format: MediaFormat::File },
            false,
        )
        .await
        .unwrap();
    assert_eq!(back, b"recipe");
}

#[tokio::test]
async fn a_photo_in_an_encrypted_room_is_stored_encrypted_and_decrypts_for_the_other_member() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    let room_id = room_with_bob(&alice, &bob, true).await;
    let data = photo(64, 48);
    alice
        .get_room(&room_id)
        .unwrap()
        .send_attachment("secret.png", &mime::IMAGE_PNG, data.clone(), AttachmentConfig::new())
        .await
        .expect("alice sends the photo");

    let got = images(&bob, &room_id).await;
    assert_eq!(got.len(), 1, "bob decrypts the message");
    let MediaSource::Encrypted(file) = &got[0].1 else { panic!("an encrypted room sends encrypted files") };

    // What the server holds is ciphertext.
    let stored = reqwest::Client::new()
        .get(format!(
            "{}/_matrix/client/v1/media/download/{}/{}",
            server.url.trim_end_matches('/'),
            file.url.server_name().unwrap(),
            file.url.media_id().unwrap()
        ))
        .bearer_auth(bob.access_token().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored.len(), data.len());
    assert_ne!(&stored[..], &data[..]);

    let decrypted = bob
        .media()
        .get_media_content(&MediaRequestParameters { source: got[0].1.clone(), format: MediaFormat::File }, false)
        .await
        .expect("bob downloads and decrypts");
    assert_eq!(decrypted, data);
}
