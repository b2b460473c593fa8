//! Media: purposes for image/voice/video messages decided by the sniffed type, metadata
//! stripping by real format from real JPEG, PNG, WebP and GIF files carrying GPS (what the
//! recipient downloads), refusal of TIFF/HEIC/AVIF, safe serving headers, the bound on
//! concurrent uploads, size limit and quota, access control, and encryption at rest.

use std::io::Cursor;

use http::StatusCode;
use img_parts::jpeg::{Jpeg, JpegSegment};
use img_parts::{Bytes, ImageEXIF};
use serde_json::json;
use tests::{Client, TestNode, phone};

/// A TIFF/EXIF block whose GPS IFD says 30°N 120°E.
fn gps_exif() -> Vec<u8> {
    exif_block(None)
}

/// A TIFF/EXIF block with GPS 30°N 120°E and, if given, an orientation in IFD0.
fn exif_block(orientation: Option<u16>) -> Vec<u8> {
    let mut t: Vec<u8> = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value);
    };
    // IFD0: the orientation, and the GPS IFD pointer.
    let n0 = 1 + u16::from(orientation.is_some());
    let gps = 8 + 2 + 12 * u32::from(n0) + 4;
    t.extend_from_slice(&n0.to_le_bytes());
    if let Some(o) = orientation {
        let v = o.to_le_bytes();
        entry(&mut t, 0x0112, 3, 1, [v[0], v[1], 0, 0]);
    }
    entry(&mut t, 0x8825, 4, 1, gps.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD: 4 entries; their rationals after it.
    let data = gps + 2 + 4 * 12 + 4;
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, data.to_le_bytes());
    entry(&mut t, 0x0003, 2, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, 5, 3, (data + 24).to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    for deg in [30u32, 120] {
        for (num, den) in [(deg, 1u32), (0, 1), (0, 1)] {
            t.extend_from_slice(&num.to_le_bytes());
            t.extend_from_slice(&den.to_le_bytes());
        }
    }
    t
}

pub(crate) const XMP_MARKER: &str = "XmpGpsMarker";
const COMMENT_MARKER: &str = "CommentMarker";

/// A real 16x16 JPEG with GPS in EXIF, an XMP packet and a comment.
pub(crate) fn jpeg_with_gps() -> Vec<u8> {
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

pub(crate) fn has_gps(bytes: &[u8]) -> bool {
    match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Ok(e) => e
            .fields()
            .any(|f| matches!(f.tag, exif::Tag::GPSLatitude | exif::Tag::GPSLongitude)),
        Err(_) => false,
    }
}

pub(crate) fn decode_jpeg(b: &[u8]) -> Vec<u8> {
    jpeg_decoder::Decoder::new(Cursor::new(b)).decode().unwrap()
}

pub(crate) fn contains(h: &[u8], n: &str) -> bool {
    h.windows(n.len()).any(|w| w == n.as_bytes())
}

async fn upload(c: &Client, token: &str, ct: &str, body: Vec<u8>) -> tests::Reply {
    c.raw("POST", "/api/v1/media", Some(token), ct, body).await
}

/// The start of an Ogg Vorbis file and of an MP4 with a video track: enough for the sniffer.
const OGG_VORBIS: &[u8] = b"OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x1e\x01vorbis";
const MP4_VIDEO: &[u8] =
    b"\0\0\0\x18ftypisom\0\0\x02\0isommp41\0\0\0\x2dhdlr\0\0\0\0\0\0\0\0vide\0\0\0\0";

async fn media_id(c: &Client, token: &str, ct: &str, body: Vec<u8>) -> String {
    let r = upload(c, token, ct, body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["media_id"].as_str().unwrap().to_string()
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

    assert_eq!(
        decode_jpeg(&served),
        decode_jpeg(&original),
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
        let data = match kind {
            "image" => jpeg_with_gps(),
            "voice" => OGG_VORBIS.to_vec(),
            _ => MP4_VIDEO.to_vec(),
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

/// A sender and a recipient in a direct conversation; the sender has granted `photos`.
async fn pair(n: &TestNode) -> (Client, String, String, String) {
    let c = n.client();
    let a = c.user("sender", &phone(1)).await;
    let b = c.user("recipient", &phone(2)).await;
    let conv = c.direct(&a, "recipient@localhost").await;
    (c, a, b, conv)
}

/// Sends `media` as a message of `kind`; the reply.
async fn send_media(c: &Client, token: &str, conv: &str, kind: &str, media: &str) -> tests::Reply {
    let body =
        json!({"txn_id": format!("{kind}-{media}"), "body": {"type": kind, "media_id": media}});
    c.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(token),
        Some(&body),
    )
    .await
}

/// Uploads `data` as `ct`, sends it with the photos purpose granted, and returns what the
/// recipient downloads (checked to be 200).
async fn recipients_copy(ct: &str, data: Vec<u8>, kind: &str) -> tests::Reply {
    let n = TestNode::start().await;
    let (c, a, b, conv) = pair(&n).await;
    c.consent(&a, "photos", true).await;
    let id = media_id(&c, &a, ct, data).await;
    let r = send_media(&c, &a, &conv, kind, &id).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let got = c.get(&format!("/api/v1/media/{id}"), Some(&b)).await;
    assert_eq!(got.status, StatusCode::OK);
    got
}

#[tokio::test]
async fn a_jpeg_sent_as_a_file_needs_the_photos_purpose_and_reaches_the_recipient_without_gps() {
    let n = TestNode::start().await;
    let (c, a, b, conv) = pair(&n).await;
    let original = jpeg_with_gps();
    let id = media_id(&c, &a, "application/octet-stream", original.clone()).await;
    let r = send_media(&c, &a, &conv, "file", &id).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a JPEG is a photo whatever it is called"
    );
    assert_eq!(r.error_code(), "consent_required");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("photos")
    );
    assert_eq!(
        c.get(&format!("/api/v1/media/{id}"), Some(&b)).await.status,
        StatusCode::NOT_FOUND,
        "nothing reached the recipient"
    );
    c.consent(&a, "photos", true).await;
    assert_eq!(
        send_media(&c, &a, &conv, "file", &id).await.status,
        StatusCode::CREATED
    );
    let got = c.get(&format!("/api/v1/media/{id}"), Some(&b)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.headers["content-type"], "image/jpeg",
        "the sniffed type is served"
    );
    assert!(
        !has_gps(&got.body),
        "stripped although declared as octet-stream"
    );
    assert!(!contains(&got.body, XMP_MARKER) && !contains(&got.body, COMMENT_MARKER));
    assert_eq!(decode_jpeg(&got.body), decode_jpeg(&original));
}

#[tokio::test]
async fn a_message_kind_that_contradicts_its_media_is_refused() {
    let n = TestNode::start().await;
    let (c, a, _, conv) = pair(&n).await;
    for p in ["photos", "microphone", "camera"] {
        c.consent(&a, p, true).await;
    }
    let pdf = media_id(&c, &a, "image/jpeg; q=1", b"%PDF-1.4".to_vec()).await;
    let audio = media_id(&c, &a, "video/mp4", OGG_VORBIS.to_vec()).await;
    let photo = media_id(&c, &a, "audio/ogg", jpeg_with_gps()).await;
    for (kind, id) in [("image", &pdf), ("video", &audio), ("voice", &photo)] {
        let r = send_media(&c, &a, &conv, kind, id).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{kind}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("body.type")
        );
    }
    assert_eq!(
        send_media(&c, &a, &conv, "voice", &audio).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        send_media(&c, &a, &conv, "image", &photo).await.status,
        StatusCode::CREATED
    );
}

/// `gps_exif()` as the EXIF payload of a WebP ("Exif\0\0" is not part of WebP's chunk).
fn webp_with_gps(pixels: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image_webp::WebPEncoder::new(&mut out);
    enc.set_exif_metadata(gps_exif());
    enc.set_xmp_metadata(
        format!("<x:xmpmeta><exif:GPSLatitude>{XMP_MARKER}</exif:GPSLatitude></x:xmpmeta>")
            .into_bytes(),
    );
    enc.encode(pixels, w, h, image_webp::ColorType::Rgb8)
        .unwrap();
    out
}

fn decode_webp(b: &[u8]) -> Vec<u8> {
    let mut d = image_webp::WebPDecoder::new(Cursor::new(b)).unwrap();
    let mut buf = vec![0; d.output_buffer_size().unwrap()];
    d.read_image(&mut buf).unwrap();
    buf
}

#[tokio::test]
async fn a_webp_photo_reaches_the_recipient_without_gps_or_xmp_and_with_the_same_pixels() {
    let pixels: Vec<u8> = (0..8 * 8 * 3).map(|i| (i * 13 % 256) as u8).collect();
    let original = webp_with_gps(&pixels, 8, 8);
    assert!(has_gps(&original), "the test file really carries GPS");
    assert!(contains(&original, XMP_MARKER));
    let got = recipients_copy("application/octet-stream", original.clone(), "image").await;
    assert_eq!(got.headers["content-type"], "image/webp");
    assert!(!has_gps(&got.body));
    assert!(!contains(&got.body, XMP_MARKER));
    let mut d = image_webp::WebPDecoder::new(Cursor::new(&got.body[..])).unwrap();
    assert_eq!(d.exif_metadata().unwrap(), None);
    assert_eq!(d.xmp_metadata().unwrap(), None);
    assert_eq!(decode_webp(&got.body), decode_webp(&original));
    assert_eq!(decode_webp(&got.body), pixels, "lossless: the very pixels");
}

/// A PNG chunk with its CRC.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = 0xFFFF_FFFFu32;
    for b in kind.iter().chain(data) {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    c.extend_from_slice(&(!crc).to_be_bytes());
    c
}

#[tokio::test]
async fn a_png_keeps_only_the_chunks_needed_to_render_it() {
    let pixels: Vec<u8> = (0..6 * 5 * 3).map(|i| (i * 29 % 256) as u8).collect();
    let mut plain = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut plain, 6, 5);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&pixels).unwrap();
    }
    // After IHDR: EXIF with GPS, a private chunk, text; after IEND, more bytes.
    let ihdr_end = 8 + 12 + 13;
    let mut original = plain[..ihdr_end].to_vec();
    original.extend_from_slice(&png_chunk(b"eXIf", &gps_exif()));
    original.extend_from_slice(&png_chunk(b"prVt", b"PrivateChunkMarker"));
    original.extend_from_slice(&png_chunk(b"tEXt", b"Comment\0PngTextMarker"));
    original.extend_from_slice(&plain[ihdr_end..]);
    original.extend_from_slice(b"TrailingMarker");
    assert!(has_gps(&original), "the test file really carries GPS");
    let got = recipients_copy("image/png", original, "image").await;
    assert_eq!(got.headers["content-type"], "image/png");
    assert!(!has_gps(&got.body));
    for marker in [
        "PrivateChunkMarker",
        "PngTextMarker",
        "TrailingMarker",
        "prVt",
    ] {
        assert!(!contains(&got.body, marker), "{marker}");
    }
    let mut reader = png::Decoder::new(Cursor::new(got.body.to_vec()))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    assert_eq!(buf, pixels, "the same pixels");
}

fn decode_gif(b: &[u8]) -> Vec<Vec<u8>> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(Cursor::new(b)).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = d.read_next_frame().unwrap() {
        frames.push(f.buffer.to_vec());
    }
    frames
}

#[tokio::test]
async fn an_animated_gif_loses_comments_and_foreign_extensions_and_keeps_its_frames() {
    let mut original = Vec::new();
    {
        let palette = [0u8, 0, 0, 255, 255, 255, 200, 30, 30, 30, 200, 30];
        let mut enc = gif::Encoder::new(&mut original, 4, 4, &palette).unwrap();
        enc.set_repeat(gif::Repeat::Infinite).unwrap();
        enc.write_raw_extension(gif::AnyExtension(0xFE), &[b"GifCommentMarker 30N 120E"])
            .unwrap();
        enc.write_raw_extension(
            gif::AnyExtension(0xFF),
            &[b"XMP DataXMP", b"<x:xmpmeta>GifXmpMarker</x:xmpmeta>"],
        )
        .unwrap();
        for k in 0..3u8 {
            let mut frame = gif::Frame::from_indexed_pixels(
                4,
                4,
                (0..16).map(|i| (i + k) % 4).collect::<Vec<u8>>(),
                None,
            );
            frame.delay = 10;
            enc.write_frame(&frame).unwrap();
        }
    }
    assert!(contains(&original, "GifCommentMarker") && contains(&original, "GifXmpMarker"));
    let got = recipients_copy("image/gif", original.clone(), "image").await;
    assert_eq!(got.headers["content-type"], "image/gif");
    assert!(!contains(&got.body, "GifCommentMarker") && !contains(&got.body, "GifXmpMarker"));
    assert!(contains(&got.body, "NETSCAPE2.0"), "looping kept");
    let frames = decode_gif(&got.body);
    assert_eq!(frames.len(), 3, "every frame kept");
    assert_eq!(frames, decode_gif(&original), "the same pixels");
}

#[tokio::test]
async fn image_formats_the_node_cannot_strip_are_refused_with_415() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("tiffuser", &phone(1)).await;
    let tiff = gps_exif(); // a TIFF file: header, IFD0, GPS IFD
    assert!(has_gps(&tiff));
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x08meta".to_vec();
    let avif = b"\0\0\0\x14ftypavif\0\0\0\0mif1\0\0\0\x08meta".to_vec();
    let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
    for (name, ct, data) in [
        ("TIFF", "image/tiff", tiff.clone()),
        ("TIFF", "application/octet-stream", tiff),
        ("HEIC", "image/heic", heic),
        ("AVIF", "application/octet-stream", avif),
        ("SVG", "text/plain", svg),
    ] {
        let r = upload(&c, &t, ct, data).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{name} as {ct}"
        );
        assert_eq!(r.error_code(), "unsupported_image");
        let m = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            m.contains(name) && m.contains("JPEG, PNG, GIF and WebP"),
            "{m}"
        );
    }
}

#[tokio::test]
async fn media_is_served_with_its_sniffed_type_and_only_safe_types_inline_in_a_sandbox() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("server", &phone(1)).await;
    let html = media_id(
        &c,
        &t,
        "text/html",
        b"<html><script>fetch('/api/v1/me')</script></html>".to_vec(),
    )
    .await;
    let jpeg = media_id(&c, &t, "text/html", jpeg_with_gps()).await;
    let pdf = media_id(&c, &t, "image/svg+xml", b"%PDF-1.4 x".to_vec()).await;
    let text = media_id(&c, &t, "text/plain", "héllo".as_bytes().to_vec()).await;
    for (id, ct, inline) in [
        (&html, "application/octet-stream", false),
        (&jpeg, "image/jpeg", true),
        (&pdf, "application/pdf", false),
        (&text, "text/plain; charset=utf-8", false),
    ] {
        let r = c.get(&format!("/api/v1/media/{id}"), Some(&t)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], ct);
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(
            r.headers
                .get("content-disposition")
                .map(|v| v.to_str().unwrap()),
            (!inline).then_some("attachment"),
            "{ct}"
        );
    }
    let r = upload(&c, &t, "text/html", b"<p>x</p>".to_vec()).await;
    assert_eq!(
        r.json()["content_type"],
        "application/octet-stream",
        "the upload answer too"
    );
}

#[tokio::test]
async fn uploads_beyond_the_concurrency_bound_get_503_with_retry_after_until_one_ends() {
    use tokio::io::AsyncWriteExt;
    let n = TestNode::start_toml("[media]\nmax_concurrent_uploads = 1\n").await;
    let c = n.client();
    let t = c.user("busy", &phone(1)).await;
    // One upload whose body never finishes holds the only place. (If a probe happens to be
    // taken first, the slow one is refused instead: then try again with a new one.)
    let head = format!(
        "POST /api/v1/media HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {t}\r\n\
         content-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\npartial"
    );
    let (slow, busy) = tests::eventually(10, "a slow upload holds the place", || {
        let (c, t, head) = (c.clone(), t.clone(), head.clone());
        async move {
            let mut slow = c.connect_tls().await.unwrap();
            slow.write_all(head.as_bytes()).await.unwrap();
            slow.flush().await.unwrap();
            let r = upload(&c, &t, "application/pdf", b"%PDF-1.4".to_vec()).await;
            (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some((slow, r))
        }
    })
    .await;
    assert_eq!(busy.error_code(), "uploads_busy");
    assert_eq!(busy.headers["retry-after"], "2");
    drop(slow);
    tests::eventually(10, "the place is free once the slow upload is gone", || {
        let c = c.clone();
        let t = t.clone();
        async move {
            let r = upload(&c, &t, "application/pdf", b"%PDF-1.4".to_vec()).await;
            (r.status == StatusCode::CREATED).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_multipart_upload_is_streamed_with_other_parts_skipped_and_its_size_bounded() {
    let n = TestNode::start_toml("[media]\nmax_bytes = 2048\nquota_bytes = 8192\n").await;
    let c = n.client();
    let t = c.user("former", &phone(1)).await;
    let form = |file: &[u8]| {
        let mut b =
            b"--Bx\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhello\r\n".to_vec();
        b.extend_from_slice(b"--Bx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\nContent-Type: application/pdf\r\n\r\n");
        b.extend_from_slice(file);
        b.extend_from_slice(b"\r\n--Bx--\r\n");
        b
    };
    let mut pdf = b"%PDF-1.4 ".to_vec();
    pdf.extend_from_slice(b"\r\n--B not the boundary\r\n");
    let r = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&t),
            "multipart/form-data; boundary=Bx",
            form(&pdf),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["content_type"], "application/pdf");
    assert_eq!(r.json()["size"], pdf.len());
    let id = r.json()["media_id"].as_str().unwrap().to_string();
    assert_eq!(
        &c.get(&format!("/api/v1/media/{id}"), Some(&t)).await.body[..],
        &pdf[..]
    );
    let r = c
        .raw(
            "POST",
            "/api/v1/media",
            Some(&t),
            "multipart/form-data; boundary=Bx",
            form(&[7; 3000]),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "body_too_large");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048")
    );
}

#[tokio::test]
async fn a_file_of_several_chunks_is_streamed_whole_with_its_length() {
    let n = TestNode::start().await;
    let c = n.client();
    let t = c.user("bigfile", &phone(1)).await;
    // Three 256 KiB chunks and a part: every byte must come back in order.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(
        (0..3 * 256 * 1024 + 1000).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8),
    );
    let id = media_id(&c, &t, "application/pdf", pdf.clone()).await;
    let got = c.get(&format!("/api/v1/media/{id}"), Some(&t)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.headers["content-length"],
        pdf.len().to_string().as_str()
    );
    assert_eq!(got.body.len(), pdf.len());
    assert!(got.body[..] == pdf[..], "the same bytes in the same order");
}

#[tokio::test]
async fn a_portrait_photo_keeps_its_orientation_and_nothing_else_of_its_exif() {
    let pixels: Vec<u8> = (0..16 * 8 * 3).map(|i| (i * 5 % 251) as u8).collect();
    let mut plain = Vec::new();
    jpeg_encoder::Encoder::new(&mut plain, 90)
        .encode(&pixels, 16, 8, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let mut jpeg = Jpeg::from_bytes(Bytes::from(plain)).unwrap();
    jpeg.set_exif(Some(Bytes::from(exif_block(Some(6)))));
    let original = jpeg.encoder().bytes().to_vec();
    assert!(has_gps(&original));
    let got = recipients_copy("image/jpeg", original, "image").await;
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(&got.body[..]))
        .expect("the orientation is kept as EXIF");
    let fields: Vec<_> = exif.fields().map(|f| f.tag).collect();
    assert_eq!(
        fields,
        [exif::Tag::Orientation],
        "nothing but the orientation"
    );
    let o = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .unwrap();
    assert_eq!(o.value.get_uint(0), Some(6));
}
