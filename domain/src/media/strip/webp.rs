//! WebP: the RIFF container is rebuilt from the image chunks (VP8, VP8L, ALPH), the extended
//! header VP8X (its EXIF and XMP flags cleared), the animation chunks (ANIM, and ANMF frames
//! with only their image subchunks) and the ICC profile (ICCP). EXIF, XMP and unknown chunks,
//! and anything after the RIFF size, are dropped.

/// VP8X flag bits for EXIF and XMP chunks being present.
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

/// A RIFF chunk: its fourcc and payload.
type Chunk<'a> = ([u8; 4], &'a [u8]);

/// The chunks of a RIFF body, each padded to an even size.
fn chunks(mut b: &[u8]) -> Result<Vec<Chunk<'_>>, &'static str> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let head = b.get(..8).ok_or("it ends inside a chunk header")?;
        let id = [head[0], head[1], head[2], head[3]];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let payload = b.get(8..8 + len).ok_or("it ends inside a chunk")?;
        out.push((id, payload));
        b = b.get(8 + len + len % 2..).unwrap_or(&[]);
    }
    Ok(out)
}

fn push(out: &mut Vec<u8>, id: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

fn is_image(id: &[u8; 4]) -> bool {
    matches!(id, b"VP8 " | b"VP8L" | b"ALPH")
}

pub(super) fn strip(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return Err("no RIFF/WEBP header");
    }
    let size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let body = b
        .get(12..8 + size.max(4))
        .ok_or("it is shorter than its RIFF size")?;
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let mut pictures = false;
    for (i, (id, payload)) in chunks(body)?.into_iter().enumerate() {
        match &id {
            b"VP8X" if i == 0 => {
                let mut header = payload.to_vec();
                if header.len() < 10 {
                    return Err("its VP8X header is too short");
                }
                header[0] &= !(FLAG_EXIF | FLAG_XMP);
                push(&mut out, &id, &header);
            }
            b"VP8X" => return Err("VP8X is not the first chunk"),
            b"ANMF" => {
                let header = payload.get(..16).ok_or("an animation frame is too short")?;
                let mut frame = header.to_vec();
                for (sub, data) in chunks(&payload[16..])? {
                    if is_image(&sub) {
                        pictures |= sub != *b"ALPH";
                        push(&mut frame, &sub, data);
                    }
                }
                push(&mut out, &id, &frame);
            }
            _ if is_image(&id) => {
                pictures |= id != *b"ALPH";
                push(&mut out, &id, payload);
            }
            b"ANIM" | b"ICCP" => push(&mut out, &id, payload),
            _ => {}
        }
    }
    if !pictures {
        return Err("it has no image data");
    }
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The chunk ids of a WebP (ANMF subchunks as `ANMF/xxxx`), and VP8X's flags.
    pub fn ids(b: &[u8]) -> (Vec<String>, u8) {
        let mut out = Vec::new();
        let mut flags = 0;
        for (id, p) in chunks(&b[12..]).unwrap() {
            out.push(String::from_utf8_lossy(&id).into_owned());
            if &id == b"VP8X" {
                flags = p[0];
            }
            if &id == b"ANMF" {
                for (s, _) in chunks(&p[16..]).unwrap() {
                    out.push(format!("ANMF/{}", String::from_utf8_lossy(&s)));
                }
            }
        }
        (out, flags)
    }

    #[test]
    fn exif_xmp_and_unknown_chunks_go_and_the_flags_follow() {
        let mut body = Vec::new();
        push(&mut body, b"VP8X", &[0x3C, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        push(&mut body, b"ICCP", b"profile");
        push(&mut body, b"ANIM", &[0; 6]);
        let mut frame = vec![0; 16];
        push(&mut frame, b"VP8L", b"pix");
        push(&mut frame, b"XYZW", b"hidden");
        push(&mut body, b"ANMF", &frame);
        push(&mut body, b"EXIF", b"II*\0gps");
        push(&mut body, b"XMP ", b"<x:xmpmeta/>");
        push(&mut body, b"ABCD", b"private");
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        b.extend_from_slice(b"WEBP");
        b.extend_from_slice(&body);
        b.extend_from_slice(b"trailing");
        let out = strip(&b).unwrap();
        let (ids, flags) = ids(&out);
        assert_eq!(ids, ["VP8X", "ICCP", "ANIM", "ANMF", "ANMF/VP8L"]);
        assert_eq!(
            flags, 0x30,
            "ICC and animation flags kept, EXIF and XMP cleared"
        );
        assert_eq!(
            u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize,
            out.len() - 8
        );
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(strip(b"RIFF\x04\0\0\0WEBP").is_err(), "no image");
        assert!(
            strip(b"RIFF\xff\0\0\0WEBPVP8 ").is_err(),
            "shorter than its size"
        );
        assert!(
            strip(b"RIFF\x0c\0\0\0WEBPVP8 \xff\0\0\0").is_err(),
            "cut chunk"
        );
    }
}
