//! What an upload really is, told from its bytes (magic numbers), never from the type the
//! client declares: the image formats the node can strip, the image formats it must refuse,
//! the audio and video containers (told apart where one container holds either), and a few
//! common document types. Pure functions over the bytes.

/// An image format whose metadata the node removes before storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Gif => "GIF",
            ImageFormat::WebP => "WebP",
        }
    }
}

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// An image the node strips of its metadata.
    Image(ImageFormat),
    /// An image format whose metadata the node cannot remove correctly (named for the message).
    UnstrippableImage(&'static str),
    /// Audio, video or a document, with its media type.
    Other(&'static str),
    /// Nothing recognised.
    Unknown,
}

/// What a stored media type is, for the purpose a message carrying it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Image,
    Audio,
    Video,
    Other,
}

impl Class {
    /// The class of a media type as stored (the sniffed type).
    pub fn of(media_type: &str) -> Class {
        match media_type.split_once('/').map(|(top, _)| top) {
            Some("image") => Class::Image,
            Some("audio") => Class::Audio,
            Some("video") => Class::Video,
            _ => Class::Other,
        }
    }
}

/// Every media type `sniff` can name (besides the images), and the only ones besides
/// `text/plain` and `application/octet-stream` that uploads are stored with.
pub const OTHER_TYPES: &[&str] = &[
    "audio/mp4",
    "audio/3gpp",
    "audio/ogg",
    "audio/webm",
    "audio/x-matroska",
    "audio/mpeg",
    "audio/aac",
    "audio/flac",
    "audio/wav",
    "audio/amr",
    "video/mp4",
    "video/quicktime",
    "video/3gpp",
    "video/ogg",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "video/x-flv",
    "video/mpeg",
    "video/mp2t",
    "application/pdf",
    "application/zip",
    "application/gzip",
];

fn find(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

/// Brands of ISO base media files that are HEIF still images (HEIC, AVIF and their
/// sequences): images with Exif/XMP items the node does not rewrite.
const HEIF_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis",
];

/// An ISO base media file (`ftyp` box first): HEIF/AVIF image, or MP4/QuickTime/3GPP audio or
/// video (video when any track's handler is `vide`; the scan fails towards video).
fn iso_bmff(b: &[u8]) -> Option<Sniffed> {
    if b.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(b[0..4].try_into().ok()?) as usize;
    let major: &[u8] = b.get(8..12)?;
    let compatible = b.get(16..size.clamp(16, b.len()))?;
    let brands = std::iter::once(major).chain(compatible.chunks_exact(4));
    let mut heif = false;
    for brand in brands {
        if HEIF_BRANDS.iter().any(|h| &h[..] == brand) {
            heif = true;
        }
    }
    if heif {
        let name = if major.starts_with(b"avi") {
            "AVIF"
        } else {
            "HEIC/HEIF"
        };
        return Some(Sniffed::UnstrippableImage(name));
    }
    if [b"M4A ", b"M4B ", b"M4P ", b"F4A "]
        .iter()
        .any(|m| &m[..] == major)
    {
        return Some(Sniffed::Other("audio/mp4"));
    }
    let video = b
        .windows(16)
        .any(|w| &w[0..4] == b"hdlr" && &w[12..16] == b"vide");
    Some(Sniffed::Other(
        match (major.starts_with(b"3g"), major == b"qt  ", video) {
            (true, _, true) => "video/3gpp",
            (true, _, false) => "audio/3gpp",
            (_, true, true) => "video/quicktime",
            (_, _, true) => "video/mp4",
            (_, _, false) => "audio/mp4",
        },
    ))
}

/// Matroska/WebM: video when a track's CodecID (element 0x86) starts with `V_`.
fn matroska(b: &[u8]) -> Option<Sniffed> {
    if !b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return None;
    }
    let head = &b[..b.len().min(64)];
    let webm = find(head, b"webm");
    let video = b
        .windows(4)
        .any(|w| w[0] == 0x86 && w[1] & 0x80 != 0 && &w[2..4] == b"V_");
    Some(Sniffed::Other(match (webm, video) {
        (true, true) => "video/webm",
        (true, false) => "audio/webm",
        (false, true) => "video/x-matroska",
        (false, false) => "audio/x-matroska",
    }))
}

/// An SVG document: after an optional BOM, XML declaration, comments and doctype, the root
/// element is `<svg`.
fn svg(b: &[u8]) -> bool {
    let mut s = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    for _ in 0..32 {
        s = s.trim_ascii_start();
        let skip_to = |s: &[u8], end: &[u8]| {
            s.windows(end.len())
                .position(|w| w == end)
                .map(|i| i + end.len())
        };
        let next = if s.starts_with(b"<?") {
            skip_to(s, b"?>")
        } else if s.starts_with(b"<!--") {
            skip_to(s, b"-->")
        } else if s.starts_with(b"<!") {
            skip_to(s, b">")
        } else {
            return s.len() >= 5
                && s[..4].eq_ignore_ascii_case(b"<svg")
                && (s[4].is_ascii_whitespace() || s[4] == b'>' || s[4] == b'/');
        };
        match next {
            Some(i) => s = &s[i..],
            None => return false,
        }
    }
    false
}

/// A Windows bitmap: `BM`, reserved zeros and a known DIB header size.
fn bmp(b: &[u8]) -> bool {
    b.starts_with(b"BM")
        && b.get(6..10) == Some(&[0, 0, 0, 0])
        && b.get(14..18)
            .map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]))
            .is_some_and(|h| [12, 40, 52, 56, 64, 108, 124].contains(&h))
}

/// What `b` is.
pub fn sniff(b: &[u8]) -> Sniffed {
    use Sniffed::{Image, Other, UnstrippableImage};
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Image(ImageFormat::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Image(ImageFormat::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Image(ImageFormat::Gif);
    }
    if b.starts_with(b"RIFF") && b.len() >= 12 {
        match &b[8..12] {
            b"WEBP" => return Image(ImageFormat::WebP),
            b"WAVE" => return Other("audio/wav"),
            b"AVI " => return Other("video/x-msvideo"),
            _ => {}
        }
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        return UnstrippableImage("TIFF");
    }
    if b.starts_with(&[0xFF, 0x0A]) || b.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return UnstrippableImage("JPEG XL");
    }
    if b.starts_with(b"\0\0\0\x0cjP  \r\n\x87\n") || b.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return UnstrippableImage("JPEG 2000");
    }
    if b.starts_with(b"8BPS") {
        return UnstrippableImage("Photoshop");
    }
    if bmp(b) {
        return UnstrippableImage("BMP");
    }
    if let Some(s) = iso_bmff(b).or_else(|| matroska(b)) {
        return s;
    }
    if b.starts_with(b"OggS") {
        return Other(if find(b, b"\x80theora") {
            "video/ogg"
        } else {
            "audio/ogg"
        });
    }
    if b.starts_with(b"fLaC") {
        return Other("audio/flac");
    }
    if b.starts_with(b"#!AMR") {
        return Other("audio/amr");
    }
    if b.starts_with(b"ID3") {
        return Other("audio/mpeg");
    }
    if b.len() >= 2 && b[0] == 0xFF && b[1] & 0xF6 == 0xF0 {
        return Other("audio/aac");
    }
    // An MPEG audio frame header: sync, layer II or III (layer I's bits are those of UTF-16
    // byte order marks), a real bitrate and sampling rate.
    if b.len() >= 4
        && b[0] == 0xFF
        && b[1] & 0xE0 == 0xE0
        && matches!((b[1] >> 1) & 3, 1 | 2)
        && (b[1] >> 3) & 3 != 1
        && !matches!(b[2] >> 4, 0 | 15)
        && (b[2] >> 2) & 3 != 3
    {
        return Other("audio/mpeg");
    }
    if b.starts_with(b"FLV\x01") {
        return Other("video/x-flv");
    }
    if b.starts_with(&[0, 0, 1, 0xBA]) || b.starts_with(&[0, 0, 1, 0xB3]) {
        return Other("video/mpeg");
    }
    if b.len() >= 377 && b[0] == 0x47 && b[188] == 0x47 && b[376] == 0x47 {
        return Other("video/mp2t");
    }
    if b.starts_with(b"%PDF-") {
        return Other("application/pdf");
    }
    if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        return Other("application/zip");
    }
    if b.starts_with(&[0x1F, 0x8B]) {
        return Other("application/gzip");
    }
    if svg(b) {
        return UnstrippableImage("SVG");
    }
    Sniffed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_bytes() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0rest"),
            Sniffed::Image(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Image(ImageFormat::WebP)
        );
        assert_eq!(sniff(b"GIF89a...."), Sniffed::Image(ImageFormat::Gif));
        assert_eq!(
            sniff(b"II*\0\x08\0\0\0"),
            Sniffed::UnstrippableImage("TIFF")
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Sniffed::UnstrippableImage("HEIC/HEIF")
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypavif\0\0\0\0mif1"),
            Sniffed::UnstrippableImage("AVIF")
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypisom\0\0\0\0mp41....hdlr\0\0\0\0\0\0\0\0vide"),
            Sniffed::Other("video/mp4")
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypM4A \0\0\0\0M4A "),
            Sniffed::Other("audio/mp4")
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypisom\0\0\0\0mp41....hdlr\0\0\0\0\0\0\0\0soun"),
            Sniffed::Other("audio/mp4")
        );
        assert_eq!(
            sniff(b"OggS\0\x02....\x01vorbis"),
            Sniffed::Other("audio/ogg")
        );
        assert_eq!(
            sniff(b"OggS\0\x02....\x80theora"),
            Sniffed::Other("video/ogg")
        );
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x42\x82\x84webm....\x86\x85A_OPUS"),
            Sniffed::Other("audio/webm")
        );
        assert_eq!(
            sniff(b"\x1A\x45\xDF\xA3\x42\x82\x84webm....\x86\x85V_VP9"),
            Sniffed::Other("video/webm")
        );
        assert_eq!(sniff(b"%PDF-1.7"), Sniffed::Other("application/pdf"));
        assert_eq!(
            sniff(b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- x -->\n<svg xmlns=\"\">"),
            Sniffed::UnstrippableImage("SVG")
        );
        assert_eq!(sniff(b"<html><script>alert(1)</script>"), Sniffed::Unknown);
        assert_eq!(sniff(b"BMW annual report"), Sniffed::Unknown);
        assert_eq!(sniff(b"\xFF\xFBh\0e\0"), Sniffed::Other("audio/mpeg"));
        assert_eq!(sniff(b"\xFF\xFEh\0e\0"), Sniffed::Unknown, "UTF-16 text");
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }

    #[test]
    fn classes_follow_the_top_level_type() {
        assert_eq!(Class::of("image/webp"), Class::Image);
        assert_eq!(Class::of("audio/ogg"), Class::Audio);
        assert_eq!(Class::of("video/mp4"), Class::Video);
        assert_eq!(Class::of("application/pdf"), Class::Other);
        assert_eq!(Class::of("nonsense"), Class::Other);
    }
}
