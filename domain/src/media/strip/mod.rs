//! Metadata removal, one file per image format the node can strip. Each rebuilds the file from
//! the parts needed to render it (an allowlist: anything unknown is dropped, and so is anything
//! after the image's end), copying image data byte for byte, so pixels are never re-encoded.
//! A file that does not parse as its format is refused, never stored as it came.

mod gif;
mod jpeg;
mod png;
mod webp;

use super::sniff::ImageFormat;

/// A file that is not a well-formed image of its (sniffed) format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the file is not a valid {}: {reason}", .format.name())]
pub struct Malformed {
    pub format: ImageFormat,
    pub reason: &'static str,
}

/// `data` without its metadata.
pub fn strip(format: ImageFormat, data: &[u8]) -> Result<Vec<u8>, Malformed> {
    match format {
        ImageFormat::Jpeg => jpeg::strip(data),
        ImageFormat::Png => png::strip(data),
        ImageFormat::Gif => gif::strip(data),
        ImageFormat::WebP => webp::strip(data),
    }
    .map_err(|reason| Malformed { format, reason })
}

#[cfg(test)]
mod properties {
    //! Property tests: whatever bytes come in, the stripper never panics, and what it returns
    //! either is `Malformed` (answered 422) or holds nothing but the parts it keeps — and
    //! stripping it again changes nothing.

    use proptest::prelude::*;

    use super::*;

    /// The checks of each format's tests, applied to an accepted output.
    fn only_kept_parts(format: ImageFormat, out: &[u8]) {
        match format {
            ImageFormat::Jpeg => {
                let (segments, trailing) = jpeg::tests::markers(out);
                assert_eq!(trailing, 0, "nothing after EOI");
                for (m, c) in segments {
                    let ok = match m {
                        0xE0 => c.starts_with(b"JFIF\0") && c.len() == 14 && c[12..] == [0, 0],
                        0xE1 => (2..=8).any(|o| c == jpeg::orientation_only(o)),
                        0xE2 => c.starts_with(b"ICC_PROFILE\0"),
                        0xEE => c.starts_with(b"Adobe"),
                        0x01 | 0xD0..=0xD7 => true,
                        0xC0..=0xC7 | 0xC9..=0xCF | 0xDA..=0xDF | 0xF7 | 0xF8 => true,
                        _ => false,
                    };
                    assert!(ok, "segment {m:#x} left in the output");
                }
            }
            ImageFormat::Png => {
                let (chunks, trailing) = png::tests::chunks(out);
                assert_eq!(trailing, 0, "nothing after IEND");
                for c in chunks {
                    assert!(
                        [
                            b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP",
                            b"mDCv", b"cLLi", b"sBIT", b"IDAT", b"acTL", b"fcTL", b"fdAT", b"IEND"
                        ]
                        .contains(&&c),
                        "chunk {:?} left in the output",
                        String::from_utf8_lossy(&c)
                    );
                }
            }
            ImageFormat::WebP => {
                let (ids, flags) = webp::tests::ids(out);
                assert_eq!(flags & 0x0C, 0, "EXIF/XMP flags cleared");
                for id in ids {
                    assert!(
                        [
                            "VP8X",
                            "VP8 ",
                            "VP8L",
                            "ALPH",
                            "ANIM",
                            "ANMF",
                            "ICCP",
                            "ANMF/VP8 ",
                            "ANMF/VP8L",
                            "ANMF/ALPH"
                        ]
                        .contains(&id.as_str()),
                        "chunk {id:?} left in the output"
                    );
                }
                let riff = u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
                assert_eq!(riff, out.len() - 8);
            }
            ImageFormat::Gif => {
                let (blocks, trailing) = gif::tests::blocks(out);
                assert!(!trailing, "nothing after the trailer");
                for (kind, label) in blocks {
                    assert!(
                        kind == 0x2C || kind == 0x21 && [0xF9, 0xFF].contains(&label),
                        "block {kind:#x}/{label:#x} left in the output"
                    );
                }
            }
        }
    }

    fn check(format: ImageFormat, input: &[u8]) {
        if let Ok(out) = strip(format, input) {
            only_kept_parts(format, &out);
            assert_eq!(
                strip(format, &out).as_ref(),
                Ok(&out),
                "stripping is idempotent"
            );
        }
    }

    /// Real images of each format, each carrying metadata to remove.
    fn seeds() -> Vec<(ImageFormat, Vec<u8>)> {
        let pixels: Vec<u8> = (0..8 * 8 * 3).map(|i| (i * 31 % 256) as u8).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&pixels, 8, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let exif = b"\xFF\xE1\x00\x10Exif\0\0II*\0\x08\0\0\0";
        jpeg.splice(2..2, exif.iter().copied());
        // An orientation, for mutations to reach the code that keeps it.
        let mut oriented = vec![0xFF, 0xE1, 0, 34];
        oriented.extend_from_slice(&jpeg::orientation_only(6));
        jpeg.splice(2..2, oriented);
        jpeg.extend_from_slice(b"\xFF\xD8\xFF\xFE\x00\x05gps");
        let mut png = Vec::new();
        {
            let mut enc = ::png::Encoder::new(&mut png, 8, 8);
            enc.set_color(::png::ColorType::Rgb);
            enc.add_text_chunk("GPS".into(), "30N 120E".into()).unwrap();
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&pixels).unwrap();
        }
        let mut gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\0\0\0\xff\xff\xff".to_vec();
        gif.extend_from_slice(b"\x21\xFE\x03GPS\x00\x21\xF9\x04\x00\x0a\x00\x00\x00");
        gif.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3B");
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x0c\0\0\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(b"VP8L\x01\0\0\0\x2f\0EXIF\x04\0\0\0II*\0");
        let riff = (webp.len() - 8) as u32;
        webp[4..8].copy_from_slice(&riff.to_le_bytes());
        vec![
            (ImageFormat::Jpeg, jpeg),
            (ImageFormat::Png, png),
            (ImageFormat::Gif, gif),
            (ImageFormat::WebP, webp),
        ]
    }

    #[test]
    fn the_seeds_are_accepted_and_lose_their_metadata() {
        for (format, seed) in seeds() {
            let out = strip(format, &seed).unwrap_or_else(|e| panic!("{e}"));
            assert!(out.len() < seed.len(), "{format:?} lost something");
            only_kept_parts(format, &out);
        }
    }

    fn format() -> impl Strategy<Value = ImageFormat> {
        prop_oneof![
            Just(ImageFormat::Jpeg),
            Just(ImageFormat::Png),
            Just(ImageFormat::Gif),
            Just(ImageFormat::WebP),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic_and_never_keep_metadata(
            format in format(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            // Past the signature, so the parsers see more than a wrong header.
            let mut input = match format {
                ImageFormat::Jpeg => b"\xFF\xD8".to_vec(),
                ImageFormat::Png => b"\x89PNG\r\n\x1a\n".to_vec(),
                ImageFormat::Gif => b"GIF89a".to_vec(),
                ImageFormat::WebP => {
                    let mut h = b"RIFF".to_vec();
                    h.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
                    h.extend_from_slice(b"WEBP");
                    h
                }
            };
            input.extend_from_slice(&body);
            check(format, &input);
            check(format, &body);
        }

        #[test]
        fn mutated_real_images_never_panic_and_never_keep_metadata(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8),
            cut in any::<u16>(),
        ) {
            let (format, mut image) = seeds().swap_remove(which);
            for (at, byte, op) in edits {
                let at = usize::from(at) % (image.len() + 1);
                match op {
                    0 if at < image.len() => image[at] = byte,
                    1 => image.insert(at, byte),
                    _ if at < image.len() => { image.remove(at); }
                    _ => {}
                }
            }
            check(format, &image);
            let cut = usize::from(cut) % (image.len() + 1);
            check(format, &image[..cut]);
        }
    }
}
