//! A real JPEG photo of about a given size, for `--federated-photo`: smooth colour gradients
//! (a photo's large shapes) under per-pixel noise (its sensor grain and detail), encoded with
//! `jpeg-encoder`. The noise is what keeps the file large: it does not compress away, and it is
//! pixel data, so a node that strips metadata keeps (nearly) every byte of it.

use anyhow::{Context, Result, bail};

/// Width of every generated photo; the height is chosen to reach the asked size.
const WIDTH: u16 = 2048;
/// Encoder quality: a camera's usual setting.
const QUALITY: u8 = 92;

/// A generated photo.
pub struct Photo {
    pub bytes: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

/// A JPEG of `WIDTH` × h pixels whose size is within about 2 % of `target` bytes (at least
/// 64 KiB, at most 64 MiB), its pixels drawn from `seed`.
pub fn photo_of_size(target: usize, seed: u64) -> Result<Photo> {
    if !(64 * 1024..=64 * 1024 * 1024).contains(&target) {
        bail!("a photo between 64 KiB and 64 MiB, not {target} bytes");
    }
    // Bytes per row from a sample strip, then one correction from the first full encoding.
    let sample_rows = 64u16;
    let sample = encode(WIDTH, sample_rows, seed)?;
    let per_row = sample.len() as f64 / f64::from(sample_rows);
    let mut rows = rows_for(target as f64 / per_row)?;
    let mut best = encode(WIDTH, rows, seed)?;
    let mut best_rows = rows;
    for _ in 0..3 {
        let off = best.len() as f64 / target as f64;
        if (off - 1.0).abs() <= 0.01 {
            break;
        }
        rows = rows_for(f64::from(rows) / off)?;
        let next = encode(WIDTH, rows, seed)?;
        if next.len().abs_diff(target) < best.len().abs_diff(target) {
            best = next;
            best_rows = rows;
        }
    }
    Ok(Photo {
        bytes: best,
        width: WIDTH,
        height: best_rows,
    })
}

fn rows_for(estimate: f64) -> Result<u16> {
    let rows = estimate.round();
    if !(8.0..=f64::from(u16::MAX)).contains(&rows) {
        bail!("no photo {WIDTH} pixels wide has that size ({rows} rows)");
    }
    Ok(rows as u16)
}

/// A `width` × `height` RGB photo from `seed`, encoded.
fn encode(width: u16, height: u16, seed: u64) -> Result<Vec<u8>> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut pixels = Vec::with_capacity(w * h * 3);
    let mut rng = SplitMix(seed);
    for y in 0..h {
        for x in 0..w {
            let base = [
                (x * 255 / w) as i32,
                (y * 255 / h.max(1)) as i32,
                ((x + y) * 255 / (w + h)) as i32,
            ];
            let grain = rng.next();
            for (c, b) in base.iter().enumerate() {
                let n = ((grain >> (c * 8)) & 0xff) as i32 - 128;
                pixels.push((b + n).clamp(0, 255) as u8);
            }
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .context("encoding the photo")?;
    Ok(out)
}

/// SplitMix64: small, fast, and plenty for pixel noise.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_photo_decodes_to_its_stated_size_in_pixels_and_is_about_the_asked_bytes() {
        let target = 300 * 1024;
        let photo = photo_of_size(target, 7).expect("photo");
        let off = photo.bytes.len() as f64 / target as f64;
        assert!((0.98..=1.02).contains(&off), "{} bytes", photo.bytes.len());
        let mut decoder = jpeg_decoder::Decoder::new(&photo.bytes[..]);
        let pixels = decoder.decode().expect("a decodable JPEG");
        let info = decoder.info().expect("header");
        assert_eq!((info.width, info.height), (photo.width, photo.height));
        assert_eq!(
            pixels.len(),
            usize::from(photo.width) * usize::from(photo.height) * 3
        );
    }

    #[test]
    fn different_seeds_give_different_photos_and_a_seed_the_same_one() {
        let a = photo_of_size(64 * 1024, 1).expect("photo");
        let b = photo_of_size(64 * 1024, 2).expect("photo");
        assert_ne!(a.bytes, b.bytes);
        assert_eq!(a.bytes, photo_of_size(64 * 1024, 1).expect("photo").bytes);
    }

    #[test]
    fn a_size_out_of_range_is_an_error() {
        assert!(photo_of_size(1000, 1).is_err());
        assert!(photo_of_size(65 * 1024 * 1024, 1).is_err());
    }
}
