//! How text is cut into search terms and how a query matches it: Chinese (and other CJK
//! scripts) as overlapping character bigrams plus single characters, so a query finds any
//! substring whatever the word boundaries (市长 in 南京市长江大桥, 京吃 in 北京吃饭); Latin and
//! other alphanumeric text as lowercased whole words, matched by the query word as a prefix
//! of a word, never as a fragment inside one (art finds "artist", not "start"). Pure functions.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` is written without spaces between words (Han, kana, Hangul, CJK compatibility):
/// such runs are indexed as characters and bigrams.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3134F) // extensions B–G
}

/// One run of text: either CJK characters or one Latin/alphanumeric word, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    Cjk(Vec<char>),
    Word(String),
}

/// Text normalised for matching: NFC, lowercased, as characters, each with the index of the
/// character of the original it came from (lowercasing may turn one character into two).
#[derive(Debug)]
pub struct Normalised {
    pub chars: Vec<char>,
    pub origin: Vec<usize>,
}

pub fn normalise(text: &str) -> Normalised {
    let mut chars = Vec::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (i, c) in text.nfc().enumerate() {
        for l in c.to_lowercase() {
            chars.push(l);
            origin.push(i);
        }
    }
    Normalised { chars, origin }
}

/// The runs of normalised characters, each with its start (index into `chars`).
pub fn runs(chars: &[char]) -> Vec<(usize, Run)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_cjk(c) {
            let start = i;
            while i < chars.len() && is_cjk(chars[i]) {
                i += 1;
            }
            out.push((start, Run::Cjk(chars[start..i].to_vec())));
        } else if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].is_alphanumeric() && !is_cjk(chars[i]) {
                i += 1;
            }
            out.push((start, Run::Word(chars[start..i].iter().collect())));
        } else {
            i += 1;
        }
    }
    out
}

/// A CJK term: one character, or two adjacent ones (tagged by the top bit).
pub fn unigram(c: char) -> u64 {
    c as u64
}

pub fn bigram(a: char, b: char) -> u64 {
    (1 << 63) | ((a as u64) << 21) | b as u64
}

/// The terms a document is indexed under: CJK unigrams and bigrams, and Latin words.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Terms {
    pub cjk: Vec<u64>,
    pub words: Vec<String>,
    /// Length in characters (for ranking).
    pub len: usize,
}

pub fn terms(text: &str) -> Terms {
    let n = normalise(text);
    let mut t = Terms {
        len: n.chars.len(),
        ..Terms::default()
    };
    for (_, run) in runs(&n.chars) {
        match run {
            Run::Cjk(cs) => {
                for (i, c) in cs.iter().enumerate() {
                    t.cjk.push(unigram(*c));
                    if let Some(d) = cs.get(i + 1) {
                        t.cjk.push(bigram(*c, *d));
                    }
                }
            }
            Run::Word(w) => t.words.push(w),
        }
    }
    t.cjk.sort_unstable();
    t.cjk.dedup();
    t.words.sort_unstable();
    t.words.dedup();
    t
}

/// A parsed query: the runs every result must contain (all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub parts: Vec<Run>,
}

/// Most parts a query may have; more are refused rather than silently dropped.
pub const MAX_PARTS: usize = 16;

impl Query {
    /// `None` if the text holds nothing searchable (only spaces or punctuation).
    pub fn parse(text: &str) -> Option<Query> {
        let n = normalise(text);
        let mut parts: Vec<Run> = runs(&n.chars).into_iter().map(|(_, r)| r).collect();
        parts.dedup();
        (!parts.is_empty()).then_some(Query { parts })
    }
}

/// Where the query's parts occur in `text`, as [start, end) character offsets of the original
/// text, sorted; empty if some part does not occur (the text does not match). The second value
/// counts the occurrences (for ranking).
pub fn find(query: &Query, text: &str) -> (Vec<(usize, usize)>, usize) {
    let n = normalise(text);
    let runs = runs(&n.chars);
    let mut spans = Vec::new();
    for part in &query.parts {
        let before = spans.len();
        match part {
            Run::Cjk(q) => {
                for (start, run) in &runs {
                    if let Run::Cjk(cs) = run
                        && cs.len() >= q.len()
                    {
                        for i in 0..=cs.len() - q.len() {
                            if cs[i..i + q.len()] == q[..] {
                                spans.push((start + i, start + i + q.len()));
                            }
                        }
                    }
                }
            }
            Run::Word(q) => {
                let qlen = q.chars().count();
                for (start, run) in &runs {
                    if let Run::Word(w) = run
                        && w.starts_with(q.as_str())
                    {
                        spans.push((*start, start + qlen));
                    }
                }
            }
        }
        if spans.len() == before {
            return (Vec::new(), 0);
        }
    }
    let count = spans.len();
    // Back to offsets of the original characters.
    let mut out: Vec<(usize, usize)> = spans
        .into_iter()
        .map(|(s, e)| (n.origin[s], n.origin[e - 1] + 1))
        .collect();
    out.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    (merged, count)
}

/// Most characters of a snippet.
pub const SNIPPET_CHARS: usize = 80;

/// A window of at most [`SNIPPET_CHARS`] characters of `text` around its first highlight, with
/// the highlights shifted into it (those that fall outside are dropped, cut ones are clipped).
pub fn snippet(text: &str, spans: &[(usize, usize)]) -> (String, Vec<(usize, usize)>) {
    let chars: Vec<char> = text.nfc().collect();
    let first = spans.first().map_or(0, |s| s.0);
    let start = if chars.len() <= SNIPPET_CHARS {
        0
    } else {
        first
            .saturating_sub(SNIPPET_CHARS / 4)
            .min(chars.len() - SNIPPET_CHARS)
    };
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let shown = spans
        .iter()
        .filter(|(s, e)| *e > start && *s < end)
        .map(|(s, e)| ((*s).max(start) - start, (*e).min(end) - start))
        .collect();
    (chars[start..end].iter().collect(), shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(q: &str, text: &str) -> bool {
        !find(&Query::parse(q).unwrap(), text).0.is_empty()
    }

    #[test]
    fn chinese_substrings_match_across_word_boundaries() {
        assert!(matches("市长", "南京市长江大桥"));
        assert!(matches("京吃", "我们在北京吃饭"));
        assert!(matches("长江大桥", "南京市长江大桥"));
        assert!(matches("桥", "南京市长江大桥"), "one character");
        assert!(!matches("大江", "南京市长江大桥"));
        assert_eq!(
            find(&Query::parse("市长").unwrap(), "南京市长江大桥").0,
            vec![(2, 4)]
        );
    }

    #[test]
    fn latin_words_match_whole_or_as_prefix_never_as_fragments() {
        assert!(matches("Art", "the ARTIST sings"));
        assert!(matches("artist", "the artist sings"));
        assert!(!matches("art", "we start now"));
        assert!(!matches("tis", "the artist"));
        assert!(matches("hello 世界", "Hello, 世界!"));
        assert!(
            !matches("hello 世界", "Hello, world"),
            "all parts are needed"
        );
    }

    #[test]
    fn terms_hold_unigrams_bigrams_and_lowercased_words() {
        let t = terms("北京 OK ok");
        assert_eq!(t.words, vec!["ok".to_string()]);
        assert!(t.cjk.contains(&unigram('北')));
        assert!(t.cjk.contains(&bigram('北', '京')));
        assert_eq!(t.cjk.len(), 3);
        assert_eq!(Query::parse(" ,.!"), None);
    }

    #[test]
    fn a_snippet_is_a_window_around_the_first_match() {
        let long = format!("{}市长{}", "啊".repeat(100), "哦".repeat(100));
        let spans = find(&Query::parse("市长").unwrap(), &long).0;
        let (s, h) = snippet(&long, &spans);
        assert_eq!(s.chars().count(), SNIPPET_CHARS);
        let cs: Vec<char> = s.chars().collect();
        assert_eq!(cs[h[0].0..h[0].1].iter().collect::<String>(), "市长");
    }
}
