//! PNG (and APNG): only the chunks needed to render the image are kept — header, palette,
//! transparency, colour space (gAMA, cHRM, sRGB, iCCP, cICP, mDCv, cLLi, sBIT), image data
//! and the animation chunks — in their order. Text (tEXt, zTXt, iTXt), EXIF (eXIf), time,
//! private and every other ancillary chunk, and anything after IEND, are dropped.

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Chunks a decoder needs (critical ones) or that change how the pixels look.
const KEPT: &[&[u8; 4]] = &[
    b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"mDCv", b"cLLi",
    b"sBIT", b"IDAT", b"acTL", b"fcTL", b"fdAT", b"IEND",
];

pub(super) fn strip(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    if !b.starts_with(SIGNATURE) {
        return Err("no PNG signature");
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIGNATURE);
    let mut i = SIGNATURE.len();
    let mut first = true;
    let mut data = false;
    loop {
        let head = b.get(i..i + 8).ok_or("it ends before its IEND chunk")?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > 0x7FFF_FFFF {
            return Err("a chunk length is out of range");
        }
        let kind = [head[4], head[5], head[6], head[7]];
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err("a chunk type is not four letters");
        }
        let end = i + 12 + len as usize;
        let chunk = b.get(i..end).ok_or("it ends inside a chunk")?;
        if first && &kind != b"IHDR" {
            return Err("the first chunk is not IHDR");
        }
        first = false;
        if KEPT.iter().any(|k| **k == kind) {
            out.extend_from_slice(chunk);
        } else if kind[0].is_ascii_uppercase() {
            // An unknown critical chunk: decoders must refuse the file, and so does the node.
            return Err("it has an unknown critical chunk");
        }
        data |= &kind == b"IDAT";
        i = end;
        if &kind == b"IEND" {
            break;
        }
    }
    if !data {
        return Err("it has no image data");
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The chunk types of a PNG and the number of bytes after IEND.
    pub fn chunks(b: &[u8]) -> (Vec<[u8; 4]>, usize) {
        let mut i = 8;
        let mut out = Vec::new();
        while i + 8 <= b.len() {
            let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = b[i + 4..i + 8].try_into().unwrap();
            out.push(kind);
            i += 12 + len;
            if &kind == b"IEND" {
                return (out, b.len() - i);
            }
        }
        (out, 0)
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]); // CRC: not checked by the stripper
        c
    }

    #[test]
    fn only_rendering_chunks_survive_and_nothing_after_iend() {
        let mut b = SIGNATURE.to_vec();
        for (k, d) in [
            (b"IHDR", &[0u8; 13][..]),
            (b"tEXt", b"GPS\x0030N"),
            (b"prVt", b"private"),
            (b"gAMA", &[0, 0, 0, 1]),
            (b"eXIf", b"II*\0"),
            (b"IDAT", b"pixels"),
            (b"tIME", &[0; 7]),
            (b"IEND", b""),
        ] {
            b.extend_from_slice(&chunk(k, d));
        }
        b.extend_from_slice(b"trailing GPS");
        let out = strip(&b).unwrap();
        assert_eq!(
            chunks(&out),
            (vec![*b"IHDR", *b"gAMA", *b"IDAT", *b"IEND"], 0)
        );
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(strip(SIGNATURE).is_err());
        let mut cut = SIGNATURE.to_vec();
        cut.extend_from_slice(&chunk(b"IHDR", &[0; 13]));
        cut.extend_from_slice(&chunk(b"IDAT", b"x"));
        assert!(strip(&cut).is_err(), "no IEND");
        let mut crit = cut.clone();
        crit.extend_from_slice(&chunk(b"ABCD", b""));
        crit.extend_from_slice(&chunk(b"IEND", b""));
        assert!(strip(&crit).is_err(), "unknown critical chunk");
    }
}
