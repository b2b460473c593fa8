//! The in-memory inverted index of message texts (derived personal data: never written to
//! disk). Each document is one message, held as its normalised text (NFC, lowercased) with its
//! conversation, seq, event position and author; terms map to sorted lists of document
//! numbers. CJK terms are characters and bigrams (a query of one character reads the
//! character's list, a longer run intersects its bigrams' lists and, from three characters
//! on, checks the run is contiguous); Latin words sit in an ordered map so a query word reads
//! the lists of every word it is a prefix of. Pure data structure: no I/O, no locking.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use super::text::{self, Query, Run};

/// Where a message is: (conversation number, seq).
pub type DocKey = (u64, u64);

#[derive(Debug)]
struct Doc {
    conv: u64,
    seq: u64,
    pos: u64,
    author: u64,
    len: u32,
    /// NFC, lowercased.
    norm: Box<str>,
}

/// A message to index.
#[derive(Debug, Clone)]
pub struct NewDoc {
    pub conv: u64,
    pub seq: u64,
    pub pos: u64,
    pub author: u64,
    pub text: String,
}

/// One ranked hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub conv: u64,
    pub seq: u64,
    pub pos: u64,
    pub author: u64,
    pub score: u32,
}

/// A place in a ranked result list: results come in (score, pos) descending order, and a page
/// after a cursor holds only what sorts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub score: u32,
    pub pos: u64,
}

#[derive(Debug, Default)]
pub struct MessageIndex {
    docs: Vec<Option<Doc>>,
    by_key: HashMap<DocKey, u32>,
    cjk: HashMap<u64, Vec<u32>>,
    words: BTreeMap<Box<str>, Vec<u32>>,
    live: usize,
    total_len: u64,
}

/// What [`MessageIndex::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub documents: usize,
    pub terms: usize,
}

impl MessageIndex {
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            documents: self.live,
            terms: self.cjk.len() + self.words.len(),
        }
    }

    /// Adds (or replaces) one message.
    pub fn insert(&mut self, d: NewDoc) {
        self.remove(&[(d.conv, d.seq)]);
        let n = text::normalise(&d.text);
        let norm: String = n.chars.iter().collect();
        let t = text::terms(&d.text);
        let Ok(id) = u32::try_from(self.docs.len()) else {
            return; // four billion documents: the index is full; the store still holds them
        };
        for term in t.cjk {
            self.cjk.entry(term).or_default().push(id);
        }
        for w in t.words {
            self.words.entry(w.into_boxed_str()).or_default().push(id);
        }
        let len = u32::try_from(t.len).unwrap_or(u32::MAX);
        self.total_len += u64::from(len);
        self.live += 1;
        self.by_key.insert((d.conv, d.seq), id);
        self.docs.push(Some(Doc {
            conv: d.conv,
            seq: d.seq,
            pos: d.pos,
            author: d.author,
            len,
            norm: norm.into_boxed_str(),
        }));
    }

    /// Removes messages (those not indexed are ignored), and every term only they held.
    pub fn remove(&mut self, keys: &[DocKey]) {
        let mut dead = HashSet::new();
        let mut cjk_terms = HashSet::new();
        let mut word_terms = HashSet::new();
        for k in keys {
            let Some(id) = self.by_key.remove(k) else {
                continue;
            };
            let Some(doc) = self.docs.get_mut(id as usize).and_then(Option::take) else {
                continue;
            };
            let t = text::terms(&doc.norm);
            cjk_terms.extend(t.cjk);
            word_terms.extend(t.words);
            self.live -= 1;
            self.total_len -= u64::from(doc.len);
            dead.insert(id);
        }
        if dead.is_empty() {
            return;
        }
        for term in cjk_terms {
            if let Some(list) = self.cjk.get_mut(&term) {
                list.retain(|d| !dead.contains(d));
                if list.is_empty() {
                    self.cjk.remove(&term);
                }
            }
        }
        for w in word_terms {
            if let Some(list) = self.words.get_mut(w.as_str()) {
                list.retain(|d| !dead.contains(d));
                if list.is_empty() {
                    self.words.remove(w.as_str());
                }
            }
        }
        if self.live == 0 {
            // Nothing left: drop the slots too.
            self.docs.clear();
        }
    }

    /// Every indexed message: (key, author).
    pub fn keys(&self) -> Vec<(DocKey, u64)> {
        self.docs
            .iter()
            .flatten()
            .map(|d| ((d.conv, d.seq), d.author))
            .collect()
    }

    /// The `want` best hits that `visible(conv, seq, pos)` lets through, after `after`.
    pub fn search(
        &self,
        q: &Query,
        visible: impl Fn(u64, u64, u64) -> bool,
        after: Option<Cursor>,
        want: usize,
    ) -> Vec<Hit> {
        let n = self.live.max(1) as f64;
        let avg = (self.total_len as f64 / n).max(1.0);
        let mut lists: Vec<std::borrow::Cow<'_, [u32]>> = Vec::new();
        let mut idf = 0.0;
        let mut verify: Vec<String> = Vec::new();
        for part in &q.parts {
            let list: std::borrow::Cow<'_, [u32]> = match part {
                Run::Cjk(cs) if cs.len() == 1 => self
                    .cjk
                    .get(&text::unigram(cs[0]))
                    .map_or(std::borrow::Cow::Borrowed(&[][..]), |l| {
                        std::borrow::Cow::Borrowed(l.as_slice())
                    }),
                Run::Cjk(cs) => {
                    let mut grams: Vec<&[u32]> = cs
                        .windows(2)
                        .map(|w| {
                            self.cjk
                                .get(&text::bigram(w[0], w[1]))
                                .map_or(&[][..], |l| l.as_slice())
                        })
                        .collect();
                    grams.sort_by_key(|l| l.len());
                    if cs.len() > 2 {
                        verify.push(cs.iter().collect());
                    }
                    std::borrow::Cow::Owned(intersect(&grams))
                }
                Run::Word(w) => {
                    let mut all: Vec<u32> = Vec::new();
                    let mut count = 0;
                    for (k, l) in self.words.range::<str, _>((
                        std::ops::Bound::Included(w.as_str()),
                        std::ops::Bound::Unbounded,
                    )) {
                        if !k.starts_with(w.as_str()) {
                            break;
                        }
                        all.extend_from_slice(l);
                        count += 1;
                    }
                    if count > 1 {
                        all.sort_unstable();
                        all.dedup();
                    }
                    std::borrow::Cow::Owned(all)
                }
            };
            if list.is_empty() {
                return Vec::new();
            }
            idf += (1.0 + n / list.len() as f64).ln();
            lists.push(list);
        }
        lists.sort_by_key(|l| l.len());
        let refs: Vec<&[u32]> = lists.iter().map(|l| &l[..]).collect();
        let candidates = if refs.len() == 1 {
            std::borrow::Cow::Borrowed(refs[0])
        } else {
            std::borrow::Cow::Owned(intersect(&refs))
        };
        if want == 0 {
            return Vec::new();
        }
        // The best `want` so far, worst on top. A candidate is ranked first (its length is all
        // the score needs), and only one that would enter the page is checked for visibility
        // and contiguity: those checks touch the text and the caller's view, the costly part
        // when most documents match.
        let mut best: BinaryHeap<Reverse<(Cursor, u32)>> =
            BinaryHeap::with_capacity(want.min(candidates.len()) + 1);
        for id in candidates.iter() {
            let Some(Some(d)) = self.docs.get(*id as usize) else {
                continue;
            };
            // Shorter messages rank higher for the same terms (BM25's length part, with the
            // term frequency taken as one); equal scores go newest first.
            let norm = 0.25 + 0.75 * f64::from(d.len) / avg;
            let score = (idf / norm * 1000.0).min(f64::from(u32::MAX)) as u32;
            let cursor = Cursor { score, pos: d.pos };
            if after.is_some_and(|c| cursor >= c) {
                continue;
            }
            if best.len() == want && best.peek().is_some_and(|w| cursor <= w.0.0) {
                continue;
            }
            if !visible(d.conv, d.seq, d.pos) {
                continue;
            }
            if !verify.iter().all(|v| d.norm.contains(v.as_str())) {
                continue;
            }
            best.push(Reverse((cursor, *id)));
            if best.len() > want {
                best.pop();
            }
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .filter_map(|Reverse((c, id))| {
                let d = self.docs.get(id as usize)?.as_ref()?;
                Some(Hit {
                    conv: d.conv,
                    seq: d.seq,
                    pos: d.pos,
                    author: d.author,
                    score: c.score,
                })
            })
            .collect();
        hits.sort_unstable_by_key(|h| Reverse(cursor_of(h)));
        hits
    }
}

pub fn cursor_of(h: &Hit) -> Cursor {
    Cursor {
        score: h.score,
        pos: h.pos,
    }
}

/// The numbers in every one of the sorted `lists` (shortest first is fastest).
fn intersect(lists: &[&[u32]]) -> Vec<u32> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    let mut out: Vec<u32> = first.to_vec();
    for l in rest {
        let mut from = 0;
        out.retain(|x| match l[from..].binary_search(x) {
            Ok(i) => {
                from += i + 1;
                true
            }
            Err(i) => {
                from += i;
                false
            }
        });
        if out.is_empty() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(conv: u64, seq: u64, text: &str) -> NewDoc {
        NewDoc {
            conv,
            seq,
            pos: conv * 100 + seq,
            author: 7,
            text: text.into(),
        }
    }

    fn find(ix: &MessageIndex, q: &str) -> Vec<DocKey> {
        let mut v: Vec<DocKey> = ix
            .search(&Query::parse(q).unwrap(), |_, _, _| true, None, 100)
            .into_iter()
            .map(|h| (h.conv, h.seq))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_chinese_substrings_single_characters_and_latin_prefixes() {
        let mut ix = MessageIndex::default();
        ix.insert(doc(1, 1, "南京市长江大桥"));
        ix.insert(doc(1, 2, "我们在北京吃饭"));
        ix.insert(doc(1, 3, "the Artist will start"));
        ix.insert(doc(1, 4, "市场很大,长江很长"));
        assert_eq!(find(&ix, "市长"), vec![(1, 1)]);
        assert_eq!(find(&ix, "京吃"), vec![(1, 2)]);
        assert_eq!(find(&ix, "京"), vec![(1, 1), (1, 2)]);
        assert_eq!(find(&ix, "长江大桥"), vec![(1, 1)]);
        assert_eq!(
            find(&ix, "市长江"),
            vec![(1, 1)],
            "bigrams 市长 and 长江 both in (1,4) but not contiguous"
        );
        assert_eq!(find(&ix, "art"), vec![(1, 3)]);
        assert!(find(&ix, "tart").is_empty(), "no fragments");
        assert!(find(&ix, "art 北京").is_empty(), "every part is needed");
    }

    #[test]
    fn removal_forgets_documents_and_their_terms() {
        let mut ix = MessageIndex::default();
        ix.insert(doc(1, 1, "秘密 words"));
        ix.insert(doc(1, 2, "公开"));
        ix.remove(&[(1, 1)]);
        assert!(find(&ix, "秘密").is_empty());
        assert!(find(&ix, "words").is_empty());
        assert_eq!(ix.stats().documents, 1);
        assert_eq!(ix.stats().terms, 3, "公, 开, 公开 only");
        ix.insert(doc(1, 2, "换了"));
        assert!(find(&ix, "公开").is_empty(), "a replaced text is forgotten");
    }

    #[test]
    fn pages_follow_the_cursor_without_repeats_and_visibility_filters() {
        let mut ix = MessageIndex::default();
        for s in 1..=25 {
            ix.insert(doc(1 + s % 2, s, "北京"));
        }
        let q = Query::parse("北京").unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = ix.search(&q, |conv, _, _| conv == 1, after, 5);
            if page.is_empty() {
                break;
            }
            after = Some(cursor_of(page.last().unwrap()));
            seen.extend(page.iter().map(|h| h.seq));
        }
        assert_eq!(seen.len(), 12, "only conversation 1");
        let mut dedup = seen.clone();
        dedup.dedup();
        assert_eq!(seen, dedup);
        assert!(
            seen.windows(2).all(|w| w[0] > w[1]),
            "newest first at equal score"
        );
    }

    #[test]
    fn shorter_messages_rank_first() {
        let mut ix = MessageIndex::default();
        ix.insert(doc(1, 1, "北京北京北京北京北京北京北京北京 long text here"));
        ix.insert(doc(1, 2, "北京"));
        let hits = ix.search(&Query::parse("北京").unwrap(), |_, _, _| true, None, 10);
        assert_eq!(hits[0].seq, 2);
        assert!(hits[0].score > hits[1].score);
    }

    #[test]
    fn a_page_is_the_best_visible_matches_whatever_the_order_they_are_met_in() {
        // What the bounded selection must equal: every visible, contiguous match, ranked, cut.
        let words = [
            "出租车",
            "出租",
            "租车",
            "北京",
            "吃饭",
            "的",
            "好",
            "art",
            "artist",
        ];
        let mut ix = MessageIndex::default();
        let mut texts = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 1..=400u64 {
            let mut t = String::new();
            for _ in 0..1 + i % 5 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push_str(words[(x % words.len() as u64) as usize]);
                t.push(' ');
            }
            ix.insert(doc(1 + i % 3, i, &t));
            texts.push((1 + i % 3, i, t));
        }
        for q in ["出租车", "租车", "的", "art", "北京 吃饭"] {
            let parsed = Query::parse(q).unwrap();
            let visible = |conv: u64, _: u64, _: u64| conv != 2;
            let all = ix.search(&parsed, visible, None, usize::MAX / 2);
            let expected: Vec<Hit> = {
                let mut v = all.clone();
                v.sort_by_key(|h| Reverse(cursor_of(h)));
                v
            };
            assert!(all.iter().all(|h| h.conv != 2));
            let matching = texts
                .iter()
                .filter(|(c, _, t)| *c != 2 && q.split(' ').all(|p| t.contains(p)))
                .count();
            assert_eq!(all.len(), matching, "{q}: every visible match");
            // Contiguity is checked: every hit holds the query's runs as written.
            for h in &all {
                let (_, _, t) = texts
                    .iter()
                    .find(|(c, s, _)| (*c, *s) == (h.conv, h.seq))
                    .unwrap();
                for part in q.split(' ') {
                    assert!(t.contains(part), "{q} in {t}");
                }
            }
            for want in [1, 3, 7, 20] {
                let mut after = None;
                let mut paged = Vec::new();
                loop {
                    let page = ix.search(&parsed, visible, after, want);
                    assert!(page.len() <= want);
                    let Some(last) = page.last() else { break };
                    after = Some(cursor_of(last));
                    paged.extend(page);
                }
                assert_eq!(paged, expected, "{q}, pages of {want}");
            }
        }
    }
}
