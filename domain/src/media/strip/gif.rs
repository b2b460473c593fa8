//! GIF: kept are the header and screen descriptor, colour tables, images and graphic control
//! extensions (frame timing and transparency), and the looping application extension
//! (NETSCAPE2.0 / ANIMEXTS1.0). Comments, plain-text extensions, every other application
//! extension (XMP, ICC, vendors') and anything after the trailer are dropped.

const IMAGE: u8 = 0x2C;
const EXTENSION: u8 = 0x21;
const TRAILER: u8 = 0x3B;
const GRAPHIC_CONTROL: u8 = 0xF9;
const APPLICATION: u8 = 0xFF;

/// The end of the data sub-blocks starting at `i` (just past the zero-length terminator).
fn sub_blocks_end(b: &[u8], mut i: usize) -> Result<usize, &'static str> {
    loop {
        let len = usize::from(*b.get(i).ok_or("it ends inside a data block")?);
        i += 1;
        if len == 0 {
            return Ok(i);
        }
        i += len;
        if i > b.len() {
            return Err("it ends inside a data block");
        }
    }
}

/// The size of a colour table announced by a packed flags byte.
fn table_size(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    }
}

pub(super) fn strip(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return Err("no GIF header");
    }
    let screen_end = 13 + table_size(*b.get(10).ok_or("it ends in its header")?);
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(b.get(..screen_end).ok_or("it ends in its colour table")?);
    let mut i = screen_end;
    let mut images = 0;
    loop {
        match b.get(i) {
            Some(&IMAGE) => {
                let flags = *b.get(i + 9).ok_or("it ends in an image descriptor")?;
                // Descriptor (10), local colour table, LZW code size (1), data sub-blocks.
                let data = i + 10 + table_size(flags) + 1;
                if data > b.len() {
                    return Err("it ends in an image descriptor");
                }
                let end = sub_blocks_end(b, data)?;
                out.extend_from_slice(&b[i..end]);
                images += 1;
                i = end;
            }
            Some(&EXTENSION) => {
                let label = *b.get(i + 1).ok_or("it ends in an extension")?;
                let end = sub_blocks_end(b, i + 2)?;
                let first = b.get(i + 2..end).unwrap_or(&[]);
                let keep = label == GRAPHIC_CONTROL
                    || label == APPLICATION
                        && (first.starts_with(b"\x0bNETSCAPE2.0")
                            || first.starts_with(b"\x0bANIMEXTS1.0"));
                if keep {
                    out.extend_from_slice(&b[i..end]);
                }
                i = end;
            }
            Some(&TRAILER) | None => break,
            Some(_) => return Err("an unknown block"),
        }
    }
    if images == 0 {
        return Err("it has no image");
    }
    out.push(TRAILER);
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The blocks of a GIF as (kind, extension label), and whether anything follows the
    /// trailer.
    pub fn blocks(b: &[u8]) -> (Vec<(u8, u8)>, bool) {
        let mut i = 13 + table_size(b[10]);
        let mut out = Vec::new();
        while let Some(&k) = b.get(i) {
            match k {
                IMAGE => {
                    out.push((k, 0));
                    i = sub_blocks_end(b, i + 10 + table_size(b[i + 9]) + 1).unwrap();
                }
                EXTENSION => {
                    out.push((k, b[i + 1]));
                    i = sub_blocks_end(b, i + 2).unwrap();
                }
                _ => return (out, i + 1 < b.len()),
            }
        }
        (out, false)
    }

    #[test]
    fn comments_and_foreign_extensions_go_animation_stays() {
        let mut b = b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec();
        b.extend_from_slice(&[0, 0, 0, 255, 255, 255]); // global table of 2
        b.extend_from_slice(b"\x21\xFF\x0bNETSCAPE2.0\x03\x01\x00\x00\x00");
        b.extend_from_slice(b"\x21\xFE\x09GPS 30N E\x00");
        b.extend_from_slice(b"\x21\xFF\x0bXMP DataXMP\x05<xmp>\x00");
        b.extend_from_slice(
            b"\x21\x01\x0c\x00\x00\x00\x00\x01\x00\x01\x00\x01\x01\x00\x00\x02hi\x00",
        );
        b.extend_from_slice(b"\x21\xF9\x04\x00\x0a\x00\x00\x00");
        b.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00");
        b.extend_from_slice(b"\x3Btrailing");
        let out = strip(&b).unwrap();
        assert_eq!(
            blocks(&out),
            (
                vec![
                    (EXTENSION, APPLICATION),
                    (EXTENSION, GRAPHIC_CONTROL),
                    (IMAGE, 0)
                ],
                false
            )
        );
        assert!(
            out.ends_with(b"\x02\x02\x44\x01\x00\x3B"),
            "image data copied"
        );
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(
            strip(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x3B").is_err(),
            "no image"
        );
        assert!(strip(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x2C\x00").is_err());
        assert!(strip(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xFE\x09GPS").is_err());
        assert!(strip(b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x99").is_err());
    }
}
