//! JPEG: kept are the frame, tables, restart and scan segments (all scans of a progressive
//! file), the JFIF header without its thumbnail, the ICC colour profile (APP2 `ICC_PROFILE`) and
//! Adobe's colour transform (APP14 `Adobe`), and of EXIF only the orientation (rebuilt as a
//! one-entry EXIF block, so photos taken in portrait are not shown on their side). Dropped are
//! the rest of EXIF (GPS above all) and XMP (APP1), MPF and FlashPix
//! (other APP2), IPTC/Photoshop (APP13), every other application segment, comments, unknown
//! markers, and everything after the end-of-image marker (where phones append further images
//! with their own EXIF).

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// Whether a segment with a length is needed to render the image.
fn structural(marker: u8) -> bool {
    // SOFn, DHT, DAC (C0–CF but JPG at C8), SOS, DQT, DNL, DRI, DHP, EXP, and JPEG-LS
    // (SOF55, LSE).
    matches!(marker, 0xC0..=0xC7 | 0xC9..=0xCF | 0xDA..=0xDF | 0xF7 | 0xF8)
}

/// The orientation (2–8; 1 is the default and needs no EXIF) in IFD0 of an APP1 EXIF payload.
fn orientation(app1: &[u8]) -> Option<u16> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    let le = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |i: usize| {
        let b = tiff.get(i..i + 2)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| {
        let b = tiff.get(i..i + 4)?;
        Some(if le {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    (0..count.min(512)).find_map(|k| {
        let e = ifd + 2 + 12 * k;
        // Tag 0x0112, type SHORT, one value.
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3 && u32_at(e + 4)? == 1)
            .then(|| u16_at(e + 8))
            .flatten()
            .filter(|o| (2..=8).contains(o))
    })
}

/// An APP1 EXIF payload holding only `orientation`.
pub fn orientation_only(orientation: u16) -> Vec<u8> {
    let mut e = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    e.extend_from_slice(&orientation.to_le_bytes());
    e.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding of the value, no next IFD
    e
}

fn push_segment(out: &mut Vec<u8>, marker: u8, contents: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((contents.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(contents);
}

/// The end of the entropy-coded data starting at `i`: the next marker that is not a stuffed
/// byte or a restart marker (or the end of the file).
fn entropy_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if b[i] == 0xFF
            && b.get(i + 1)
                .is_none_or(|m| !matches!(m, 0x00 | 0xD0..=0xD7))
        {
            return i;
        }
        i += 1;
    }
    b.len()
}

pub(super) fn strip(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    if !b.starts_with(&[0xFF, SOI]) {
        return Err("no start-of-image marker");
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&[0xFF, SOI]);
    let mut i = 2;
    let (mut frame, mut scan, mut oriented) = (false, false, false);
    loop {
        if i >= b.len() {
            // A file cut off after a scan still renders what it has; close it.
            if !scan {
                return Err("it ends before its image data");
            }
            break;
        }
        if b[i] != 0xFF {
            return Err("a segment does not start with a marker");
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            if scan {
                break;
            }
            return Err("it ends inside a marker");
        };
        i += 1;
        match marker {
            EOI => break,
            0x00 => return Err("a stuffed byte where a marker belongs"),
            // Markers without a length (TEM, RSTn) carry nothing.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            SOI => return Err("a second start-of-image marker"),
            _ => {}
        }
        let len = match b.get(i..i + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err("it ends inside a segment"),
        };
        if len < 2 {
            return Err("a segment length is too small");
        }
        let contents = b.get(i + 2..i + len).ok_or("it ends inside a segment")?;
        i += len;
        match marker {
            0xE0 if contents.starts_with(b"JFIF\0") && contents.len() >= 12 => {
                // Version, units and density; the thumbnail (of the original, uncropped image)
                // is dropped by declaring it 0x0.
                let mut jfif = contents[..12].to_vec();
                jfif.extend_from_slice(&[0, 0]);
                push_segment(&mut out, marker, &jfif);
            }
            0xE1 if !oriented && !frame => {
                if let Some(o) = orientation(contents) {
                    push_segment(&mut out, marker, &orientation_only(o));
                    oriented = true;
                }
            }
            0xE2 if contents.starts_with(b"ICC_PROFILE\0") => {
                push_segment(&mut out, marker, contents)
            }
            0xEE if contents.starts_with(b"Adobe") => push_segment(&mut out, marker, contents),
            m if structural(m) => {
                frame |=
                    (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC) || m == 0xF7;
                push_segment(&mut out, marker, contents);
                if m == SOS {
                    if !frame {
                        return Err("a scan comes before the frame header");
                    }
                    scan = true;
                    let end = entropy_end(b, i);
                    out.extend_from_slice(&b[i..end]);
                    i = end;
                }
            }
            _ => {}
        }
    }
    if !scan {
        return Err("it has no image data");
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The markers of a JPEG's segments and whatever follows its end-of-image marker.
    pub fn markers(b: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 1 < b.len() {
            let m = b[i + 1];
            i += 2;
            if m == EOI {
                return (out, b.len() - i);
            }
            if matches!(m, 0x01 | 0xD0..=0xD7) {
                out.push((m, vec![]));
                continue;
            }
            let len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
            out.push((m, b[i + 2..i + len].to_vec()));
            i += len;
            if m == SOS {
                i = entropy_end(b, i);
            }
        }
        (out, 0)
    }

    fn minimal(extra: &[(u8, &[u8])], trailer: &[u8]) -> Vec<u8> {
        let mut b = vec![0xFF, SOI];
        for (m, c) in extra {
            push_segment(&mut b, *m, c);
        }
        push_segment(&mut b, 0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        push_segment(&mut b, SOS, &[1, 1, 0, 0, 63, 0]);
        b.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        b.extend_from_slice(&[0xFF, EOI]);
        b.extend_from_slice(trailer);
        b
    }

    #[test]
    fn metadata_segments_and_trailing_images_are_dropped() {
        let mut jfif = b"JFIF\0\x01\x02\x00\x00\x01\x00\x01".to_vec();
        jfif.extend_from_slice(&[1, 1, 9, 9, 9]); // a 1x1 thumbnail
        let input = minimal(
            &[
                (0xE0, &jfif),
                (0xE1, b"Exif\0\0GPS"),
                (0xE2, b"ICC_PROFILE\0\x01\x01prof"),
                (0xE2, b"MPF\0II*\0"),
                (0xED, b"Photoshop 3.0\0"),
                (0xFE, b"a comment"),
                (0xEE, b"Adobe\0d"),
            ],
            b"\xFF\xD8\xFF\xE1\0\x08Exif\0\0",
        );
        let out = strip(&input).unwrap();
        let (segs, trailing) = markers(&out);
        assert_eq!(trailing, 0);
        let kinds: Vec<u8> = segs.iter().map(|s| s.0).collect();
        assert_eq!(kinds, [0xE0, 0xE2, 0xEE, 0xC0, SOS]);
        assert_eq!(segs[0].1, b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x00\x00");
        assert!(segs[1].1.starts_with(b"ICC_PROFILE"));
        // The scan's bytes, stuffing and restart marker included, are copied as they were.
        assert!(out.ends_with(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, EOI]));
    }

    #[test]
    fn of_exif_only_the_orientation_is_kept() {
        // Big-endian EXIF: IFD0 with a make, the orientation 6 and a GPS pointer.
        let mut exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x03".to_vec();
        exif.extend_from_slice(b"\x01\x0f\0\x02\0\0\0\x04Cam\0");
        exif.extend_from_slice(b"\x01\x12\0\x03\0\0\0\x01\0\x06\0\0");
        exif.extend_from_slice(b"\x88\x25\0\x04\0\0\0\x01\0\0\0\x40\0\0\0\0");
        let out = strip(&minimal(&[(0xE1, &exif)], b"")).unwrap();
        let (segs, _) = markers(&out);
        assert_eq!(segs[0], (0xE1, orientation_only(6)));
        assert_eq!(
            orientation(&segs[0].1),
            Some(6),
            "what is written reads back"
        );
        let plain = strip(&minimal(&[(0xE1, b"Exif\0\0II*\0\x08\0\0\0\0\0")], b"")).unwrap();
        assert_eq!(
            markers(&plain).0[0].0,
            0xC0,
            "no orientation: no EXIF at all"
        );
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(strip(b"\xFF\xD8").is_err());
        assert!(
            strip(b"\xFF\xD8\xFF\xE1\x00\x40Exif").is_err(),
            "cut inside a segment"
        );
        let no_frame = {
            let mut b = vec![0xFF, SOI];
            push_segment(&mut b, SOS, &[1, 1, 0, 0, 63, 0]);
            b
        };
        assert!(strip(&no_frame).is_err());
        let mut only_app = vec![0xFF, SOI];
        push_segment(&mut only_app, 0xE1, b"Exif\0\0");
        only_app.extend_from_slice(&[0xFF, EOI]);
        assert!(strip(&only_app).is_err(), "no image data");
    }
}
