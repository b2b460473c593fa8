//! Media: purposes for image/voice/video messages, metadata stripping from real JPEG and PNG
//! files carrying GPS, size limit and quota, access control, and encryption at rest.

use std::io::Cursor;

use http::StatusCode;
use img_parts::jpeg::{Jpeg, JpegSegment};
use img_parts::{Bytes, ImageEXIF};
use serde_json::json;
use tests::{Client, TestNode, phone};

/// A TIFF/EXIF block whose GPS IFD says 30°N 120°E.
fn gps_exif() -> Vec<u8> {
    let mut t: Vec<u8> = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value);
    };
    // IFD0: one entry, the GPS IFD pointer.
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x8825, 4, 1, 26u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 26: 4 entries; its data at 26 + 2 + 4*12 + 4 = 80.
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, 80u32.to_le_bytes());
    entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, 5, 3, 104u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    for deg in [30u32, 120] {
        for (num, den) in [(deg, 1u32), (0, 1), (0, 1)] {
            t.extend_from_slice(&num.to_le_bytes());
            t.extend_from_slice(&den.to_le_bytes());
        }
    }
    t
}

const XMP_MARKER: &str = "XmpGpsMarker";
const COMMENT_MARKER: &str = "CommentMarker";

/// A real 16x16 JPEG with GPS in EXIF, an XMP packet and a comment.
fn jpeg_with_gps() -> Vec<u8> {
    let pixels: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let mut plain = Vec::new();
    jpeg_encoder::Encoder::new(&mut plain, 90)
        .encode(&pixels, 16, 16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut jpeg = Jpeg::from_bytes(Bytes::from(plain)).unwrap();
    jpeg.set_exif(Some(Bytes::from(gps_exif())));
    let xmp = format!(
        "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>{XMP_MARKER}</exif:GPSLatitude></x:xmpmeta>"
    );
    jpeg.segments_mut()
        .insert(2, JpegSegment::new_with_contents(0xE1, Bytes::from(xmp)));
    jpeg.segments_mut().insert(
        3,
        JpegSegment::new_with_contents(0xFE, Bytes::from(COMMENT_MARKER)),
    );
    jpeg.encoder().bytes().to_vec()
}

fn has_gps(bytes: &[u8]) -> bool {
    match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(e) => e
            .fields()
            .any(|f| matches!(f.tag, exif::Tag::GPSLatitude | exif::Tag::GPSLongitude)),
        Err(_) => false,
    }
}

fn contains(h: &[u8], n: &str) -> bool {
    h.windows(n.len()).any(|w| w == n.as_bytes())
}

async fn upload(c: &Client, token: &str, ct: &str, body: Vec<u8>) -> tests::Reply {
    c.raw("POST", "/api/v1/media", Some(token), ct, body).await
}

#[tokio::test]
async fn uploaded_jpeg_loses_gps_and_other_metadata_but_still_decodes_to_the_same_pixels() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("photog", &phone(1)).await;
    let original = jpeg_with_gps();
    assert!(has_gps(&original), "the test file really carries GPS");
    assert!(contains(&original, XMP_MARKER) && contains(&original, COMMENT_MARKER));

    let r = upload(&c, &t, "image/jpeg", original.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let id = r.json()["media_id"].as_str().unwrap().to_string();
    let served = c.get(&format!("/api/v1/media/{id}"), Some(&t)).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.headers["content-type"], "image/jpeg");
    let served = served.body.to_vec();
    assert!(!has_gps(&served), "no GPS in what is served");
    assert!(
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(&served))
            .is_err(),
        "no EXIF at all"
    );
    assert!(!contains(&served, XMP_MARKER) && !contains(&served, COMMENT_MARKER));

    let decode = |b: &[u8]| {
        jpeg_decoder::Decoder::new(Cursor::new(b.to_vec()))
            .decode()
            .unwrap()
    };
    assert_eq!(
        decode(&served),
        decode(&original),
        "same pixels: nothing re-encoded"
    );
}

#[tokio::test]
async fn uploaded_png_loses_its_text_and_exif_chunks() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("pnguser", &phone(1)).await;
    let mut data = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut data, 4, 4);
        enc.set_color(png::ColorType::Rgb);
        enc.add_text_chunk("Location".into(), "PngGpsMarker 30N 120E".into())
            .unwrap();
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[200u8; 4 * 4 * 3]).unwrap();
    }
    assert!(contains(&data, "PngGpsMarker"));
    let r = upload(&c, &t, "image/png", data).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.json()["media_id"].as_str().unwrap().to_string();
    let served = c
        .get(&format!("/api/v1/media/{id}"), Some(&t))
        .await
        .body
        .to_vec();
    assert!(!contains(&served, "PngGpsMarker"));
    let decoder = png::Decoder::new(Cursor::new(served));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    assert!(buf[..48].iter().all(|b| *b == 200), "pixels intact");
}

#[tokio::test]
async fn image_voice_and_video_messages_need_their_purposes() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("sender", &phone(1)).await;
    c.register("receiver", &phone(2)).await;
    let conv = c.direct(&a, "receiver@localhost").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    for (kind, purpose, ct) in [
        ("image", "photos", "image/jpeg"),
        ("voice", "microphone", "audio/ogg"),
        ("video", "camera", "video/mp4"),
    ] {
        let data = if kind == "image" {
            jpeg_with_gps()
        } else {
            vec![1, 2, 3, 4]
        };
        let media = upload(&c, &a, ct, data).await.json()["media_id"]
            .as_str()
            .unwrap()
            .to_string();
        let body = json!({"txn_id": kind, "body": {"type": kind, "media_id": media}});
        let r = c.call("POST", &path, Some(&a), Some(&body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{kind} without {purpose}");
        assert_eq!(r.error_code(), "consent_required");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(purpose)
        );
        c.call(
            "PUT",
            &format!("/api/v1/me/consents/{purpose}"),
            Some(&a),
            Some(&json!({"granted": true})),
        )
        .await;
        let r = c.call("POST", &path, Some(&a), Some(&body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind} with {purpose}");
    }
    // Files need no purpose; text never does.
    let media = upload(&c, &a, "application/pdf", b"%PDF-1.4".to_vec())
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c.call("POST", &path, Some(&a), Some(&json!({"txn_id": "f", "body": {"type": "file", "media_id": media, "name": "a.pdf"}}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn media_is_visible_to_its_owner_and_the_members_it_was_sent_to_only() {
    let n = TestNode::start().await;
    let c = n.client();
    let a = c.user("owner", &phone(1)).await;
    let b = c.user("member", &phone(2)).await;
    let x = c.user("stranger", &phone(3)).await;
    let conv = c.direct(&a, "member@localhost").await;
    let media = upload(&c, &a, "text/plain", b"shared file".to_vec())
        .await
        .json()["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/media/{media}");
    assert_eq!(
        c.get(&path, Some(&b)).await.status,
        StatusCode::NOT_FOUND,
        "not sent yet"
    );
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&a),
            Some(&json!({"txn_id": "m", "body": {"type": "file", "media_id": media}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let got = c.get(&path, Some(&b)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body[..], b"shared file");
    assert_eq!(c.get(&path, Some(&x)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get("/api/v1/media/nonexistent", Some(&a)).await.status,
        StatusCode::NOT_FOUND
    );
    // Someone else's media cannot be sent.
    let conv2 = c.direct(&x, "member@localhost").await;
    let r = c
        .call(
            "POST",
            &format!("/api/v1/conversations/{conv2}/messages"),
            Some(&x),
            Some(&json!({"txn_id": "m", "body": {"type": "file", "media_id": media}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn size_limit_and_quota_give_413_with_a_clear_message() {
    let n = TestNode::start_toml("[media]\nmax_bytes = 2048\nquota_bytes = 4096\n").await;
    let c = n.client();
    let t = c.user("quota", &phone(1)).await;
    let r = upload(&c, &t, "application/octet-stream", vec![0; 3000]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "body_too_large");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048")
    );
    for _ in 0..2 {
        assert_eq!(
            upload(&c, &t, "application/octet-stream", vec![1; 2000])
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let r = upload(&c, &t, "application/octet-stream", vec![1; 2000]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "quota_exceeded");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    let r = upload(&c, &t, "image/jpeg", b"not really a jpeg".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&t),
            "multipart/mixed; boundary=x",
            b"--x--".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&t),
            "multipart/form-data; boundary=x",
            b"--x--".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no file part");
    assert_eq!(r.error_code(), "bad_multipart");
}

#[tokio::test]
async fn media_and_message_text_are_encrypted_at_rest() {
    let mut n = TestNode::start().await;
    let c = n.client();
    let a = c.user("secret", &phone(1)).await;
    c.register("friend", &phone(2)).await;
    let conv = c.direct(&a, "friend@localhost").await;
    upload(&c, &a, "text/plain", b"MediaMarkerQq81 contents".to_vec()).await;
    c.say(&a, &conv, "1", "MessageMarkerZz42").await;
    n.stop().await;
    let raw = std::fs::read(n.db_path()).unwrap();
    assert!(!contains(&raw, "MediaMarkerQq81"));
    assert!(!contains(&raw, "MessageMarkerZz42"));
}

#[tokio::test]
async fn a_multipart_upload_is_stripped_the_same_way() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("formuser", &phone(1)).await;
    let jpeg = jpeg_with_gps();
    let mut body = b"--B0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(b"\r\n--B0undary--\r\n");
    let r = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&t),
            "multipart/form-data; boundary=B0undary",
            body,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["content_type"], "image/jpeg");
    let id = r.json()["media_id"].as_str().unwrap().to_string();
    let served = c
        .get(&format!("/api/v1/media/{id}"), Some(&t))
        .await
        .body
        .to_vec();
    assert!(!has_gps(&served) && !contains(&served, XMP_MARKER));
    assert!(
        jpeg_decoder::Decoder::new(Cursor::new(served))
            .decode()
            .is_ok()
    );
}
