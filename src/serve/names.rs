//! Search by a part of a name: an inverted index of the characters and
//! character pairs of every organization's names.
//!
//! Organizations are numbered by their place in the sorted list of
//! normalized names (`(name, org)` order), so every posting list, and
//! every intersection of them, comes out in the order results are shown:
//! a search reads candidates in that order, checks each with `contains`
//! and stops as soon as it has one more than [`MAX_RESULTS`].
//!
//! Each organization is posted under every character and every pair of
//! adjacent characters of its normalized name and of its folded whole
//! name (one index for both: a part of either has all its pairs in it).
//! A query of one character reads that character's list; a longer one
//! intersects the lists of its pairs, the shortest first.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::index::MAX_RESULTS;

/// A name folded for searching: NFKC (full-width forms), white space
/// removed, Latin letters upper case.
pub(crate) fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What a search found: organizations (indices into the index's
/// organizations) in the order shown, at most [`MAX_RESULTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The organizations, in the order shown.
    pub(crate) orgs: Vec<u32>,
    /// Whether more matched than [`MAX_RESULTS`].
    pub(crate) truncated: bool,
}

/// The names of one version, indexed for search.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Normalized names, sorted, with the organization each names; a
    /// name's place here is its number in the posting lists.
    names: Vec<(String, u32)>,
    /// Each organization's whole name folded (its place prefix kept), so
    /// a part that runs into the prefix is found too; by organization.
    folded: Vec<String>,
    /// Gram (see [`gram`]) → its posting list, `postings[start..end]`.
    grams: HashMap<u64, (u32, u32), BuildHasherDefault<GramHasher>>,
    /// Every posting list, one after the other, each ascending.
    postings: Vec<u32>,
}

/// One character (`b` = none) or a pair of adjacent characters as a key.
fn gram(a: char, b: Option<char>) -> u64 {
    (u64::from(a) << 32) | u64::from(b.map_or(u32::MAX, u32::from))
}

/// The grams of a text: each character and each pair of adjacent ones.
fn grams_of(text: &str, out: &mut Vec<u64>) {
    let mut prev = None;
    for c in text.chars() {
        out.push(gram(c, None));
        if let Some(p) = prev {
            out.push(gram(p, Some(c)));
        }
        prev = Some(c);
    }
}

/// The grams a part must be found under: its one character, or its pairs.
fn query_grams(part: &str) -> Vec<u64> {
    let chars: Vec<char> = part.chars().collect();
    let mut out: Vec<u64> = match chars.as_slice() {
        [] => Vec::new(),
        [c] => vec![gram(*c, None)],
        _ => chars.windows(2).map(|w| gram(w[0], Some(w[1]))).collect(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// A hasher for grams: the keys are characters of published names, not
/// of requests (a search only looks them up), so a fast mix is enough.
#[derive(Default)]
struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        // The finalizer of MurmurHash3: every bit of the key reaches the
        // low (bucket) and high (tag) bits.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
}

/// Candidates in ascending order: the numbers on every one of some
/// posting lists.
enum Candidates<'a> {
    /// Every number below this (a part of no character).
    All(std::ops::Range<u32>),
    /// The numbers of the first list that every other list holds too;
    /// the others are cut past each number read, as numbers only grow.
    Lists(Vec<&'a [u32]>, usize),
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            Self::All(range) => range.next(),
            Self::Lists(lists, at) => {
                let (first, rest) = lists.split_first_mut()?;
                'next: while let Some(&p) = first.get(*at) {
                    *at += 1;
                    for l in rest.iter_mut() {
                        *l = &l[l.partition_point(|&x| x < p)..];
                        if l.first() != Some(&p) {
                            continue 'next;
                        }
                    }
                    return Some(p);
                }
                None
            }
        }
    }
}

impl Names {
    /// Indexes the names of `orgs` (the organizations, in their order).
    pub(crate) fn new<'a>(orgs: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let mut folded = Vec::with_capacity(orgs.len());
        let mut names = Vec::with_capacity(orgs.len());
        for (i, name) in orgs.enumerate() {
            names.push((
                crate::keys::normalize_name(name),
                u32::try_from(i).unwrap_or(u32::MAX),
            ));
            folded.push(fold(name));
        }
        names.sort_unstable();
        let mut lists: HashMap<u64, Vec<u32>, BuildHasherDefault<GramHasher>> = HashMap::default();
        let mut grams = Vec::new();
        for (p, (name, i)) in names.iter().enumerate() {
            let p = p as u32;
            grams.clear();
            let full = folded.get(*i as usize).map_or("", String::as_str);
            grams_of(full, &mut grams);
            // Mostly the normalized name is the end of the folded one (its
            // place prefix stripped): its grams are among those already.
            if !full.ends_with(name.as_str()) {
                grams_of(name, &mut grams);
            }
            for g in &grams {
                let list = lists.entry(*g).or_default();
                // Numbers only grow: a gram met twice in one name is
                // posted once.
                if list.last() != Some(&p) {
                    list.push(p);
                }
            }
        }
        let total = lists.values().map(Vec::len).sum();
        let mut postings = Vec::with_capacity(total);
        let mut index = HashMap::with_capacity_and_hasher(lists.len(), Default::default());
        for (g, list) in lists {
            let start = postings.len() as u32;
            postings.extend_from_slice(&list);
            index.insert(g, (start, postings.len() as u32));
        }
        Self {
            names,
            folded,
            grams: index,
            postings,
        }
    }

    fn list(&self, g: u64) -> &[u32] {
        self.grams
            .get(&g)
            .and_then(|&(s, e)| self.postings.get(s as usize..e as usize))
            .unwrap_or_default()
    }

    /// Every name holding all the grams of `part`, ascending.
    fn candidates(&self, part: &str) -> Candidates<'_> {
        let grams = query_grams(part);
        if grams.is_empty() {
            return Candidates::All(0..self.names.len() as u32);
        }
        let mut lists: Vec<&[u32]> = grams.iter().map(|g| self.list(*g)).collect();
        lists.sort_by_key(|l| l.len());
        if lists.first().is_some_and(|l| l.is_empty()) {
            lists.truncate(1);
        }
        Candidates::Lists(lists, 0)
    }

    /// Organizations whose normalized name contains `q` (the normalized
    /// query) or whose folded whole name contains `whole` (the folded
    /// query): the exact name first, then names starting with `q`, then
    /// the rest, each by name (then by organization); at most
    /// [`MAX_RESULTS`].
    pub(crate) fn search(&self, q: &str, whole: &str) -> Found {
        if q.is_empty() {
            return Found {
                orgs: Vec::new(),
                truncated: false,
            };
        }
        // Names starting with the query are one run of the sorted names,
        // the exact ones first.
        let start = self.names.partition_point(|(n, _)| n.as_str() < q);
        let end = start
            + self.names[start..]
                .iter()
                .take(MAX_RESULTS + 1)
                .take_while(|(n, _)| n.starts_with(q))
                .count();
        let mut found: Vec<u32> = (start..end).map(|p| p as u32).collect();
        if found.len() <= MAX_RESULTS {
            let mut a = self.candidates(q).peekable();
            let mut b = if whole == q {
                Candidates::All(0..0)
            } else {
                self.candidates(whole)
            }
            .peekable();
            loop {
                let p = match (a.peek().copied(), b.peek().copied()) {
                    (None, None) => break,
                    (Some(x), Some(y)) if x == y => {
                        a.next();
                        b.next();
                        x
                    }
                    (Some(x), Some(y)) if x < y => {
                        a.next();
                        x
                    }
                    (Some(x), None) => {
                        a.next();
                        x
                    }
                    (_, Some(y)) => {
                        b.next();
                        y
                    }
                };
                let Some((n, i)) = self.names.get(p as usize) else {
                    continue;
                };
                if n.starts_with(q) {
                    continue;
                }
                let full = self.folded.get(*i as usize).map_or("", String::as_str);
                if n.contains(q) || full.contains(whole) {
                    found.push(p);
                    if found.len() > MAX_RESULTS {
                        break;
                    }
                }
            }
        }
        let truncated = found.len() > MAX_RESULTS;
        found.truncate(MAX_RESULTS);
        Found {
            orgs: found
                .into_iter()
                .filter_map(|p| self.names.get(p as usize).map(|(_, i)| *i))
                .collect(),
            truncated,
        }
    }

    /// Bytes held by the names and their index (allocated capacity, keys
    /// and posting lists; the hash table counted at its buckets).
    pub(crate) fn bytes(&self) -> usize {
        let strings: usize = self.names.iter().map(|(n, _)| n.capacity()).sum::<usize>()
            + self.folded.iter().map(String::capacity).sum::<usize>();
        strings
            + self.names.capacity() * std::mem::size_of::<(String, u32)>()
            + self.folded.capacity() * std::mem::size_of::<String>()
            + self.postings.capacity() * 4
            + self.grams.capacity() * (std::mem::size_of::<(u64, (u32, u32))>() + 1)
    }

    /// Distinct grams and posting-list entries.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.grams.len(), self.postings.len())
    }

    /// The search before this index: every name scanned (the oracle of
    /// the tests).
    #[cfg(test)]
    fn search_linear(&self, q: &str, whole: &str) -> Found {
        if q.is_empty() {
            return Found {
                orgs: Vec::new(),
                truncated: false,
            };
        }
        let mut found: Vec<(u8, &str, u32)> = Vec::new();
        let start = self.names.partition_point(|(n, _)| n.as_str() < q);
        for (n, i) in self.names[start..]
            .iter()
            .take_while(|(n, _)| n.starts_with(q))
        {
            found.push((u8::from(n != q), n, *i));
            if found.len() > MAX_RESULTS {
                break;
            }
        }
        if found.len() <= MAX_RESULTS {
            for (n, i) in &self.names {
                let full = self.folded.get(*i as usize).map_or("", String::as_str);
                if !n.starts_with(q) && (n.contains(q) || full.contains(whole)) {
                    found.push((2, n, *i));
                    if found.len() > MAX_RESULTS {
                        break;
                    }
                }
            }
        }
        let truncated = found.len() > MAX_RESULTS;
        found.truncate(MAX_RESULTS);
        found.sort();
        Found {
            orgs: found.into_iter().map(|(_, _, i)| i).collect(),
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(names: &[String]) -> Names {
        Names::new(names.iter().map(String::as_str))
    }

    fn both(names: &Names, query: &str) -> (Found, Found) {
        let q = crate::keys::normalize_name(query);
        let whole = fold(query);
        (names.search(&q, &whole), names.search_linear(&q, &whole))
    }

    fn owned(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_first_then_prefix_then_the_rest_by_name() {
        let names = owned(&[
            "西湖区爱心协会",
            "爱心协会",
            "杭州市爱心协会",
            "浙江省爱心协会联合会",
            "阳光爱心协会",
            "爱心",
            "无关基金会",
        ]);
        let idx = index(&names);
        let (got, oracle) = both(&idx, "爱心协会");
        assert_eq!(got, oracle);
        // "爱心协会" three times (by organization), then "爱心协会联合会",
        // then "阳光爱心协会".
        assert_eq!(got.orgs, vec![0, 1, 2, 3, 4]);
        assert!(!got.truncated);
        let (got, oracle) = both(&idx, "爱");
        assert_eq!(got, oracle);
        assert_eq!(got.orgs, vec![5, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_part_running_into_the_place_prefix_is_found_by_the_whole_name() {
        let names = owned(&["杭州市爱心协会", "杭州爱心协会", "萧山区爱心协会"]);
        let idx = index(&names);
        for query in ["州市爱", "市爱心", "杭州市爱心协会", "杭", "区爱", "州"] {
            let (got, oracle) = both(&idx, query);
            assert_eq!(got, oracle, "{query}");
            assert!(!got.orgs.is_empty(), "{query}");
        }
        let (got, oracle) = both(&idx, "杭州市萧山区");
        assert_eq!(got, oracle);
    }

    #[test]
    fn more_than_max_results_are_cut_and_flagged() {
        let names: Vec<String> = (0..3 * MAX_RESULTS)
            .map(|i| format!("第{i}号爱心协会"))
            .collect();
        let idx = index(&names);
        for query in ["协会", "协", "第1", "爱心协会", "号", "第"] {
            let (got, oracle) = both(&idx, query);
            assert_eq!(got, oracle, "{query}");
        }
        let (got, _) = both(&idx, "协会");
        assert_eq!(got.orgs.len(), MAX_RESULTS);
        assert!(got.truncated);
        // Exactly MAX_RESULTS matches: not truncated.
        let names: Vec<String> = (0..MAX_RESULTS).map(|i| format!("会{i}")).collect();
        let idx = index(&names);
        let (got, oracle) = both(&idx, "会");
        assert_eq!(got, oracle);
        assert_eq!(got.orgs.len(), MAX_RESULTS);
        assert!(!got.truncated);
    }

    #[test]
    fn empty_and_absent_queries() {
        let idx = index(&owned(&["爱心协会", "ABC基金会"]));
        for query in [
            "",
            "  ",
            "不存在",
            "abc",
            "ＡＢＣ",
            "c基",
            "协会会",
            "\u{200b}",
        ] {
            let (got, oracle) = both(&idx, query);
            assert_eq!(got, oracle, "{query:?}");
        }
        let empty = index(&[]);
        assert_eq!(both(&empty, "协会").0.orgs, Vec::<u32>::new());
    }

    /// Place prefixes, stacked at the start of some names.
    const PLACES: &[&str] = &["杭州市", "浙江省", "西湖区", "杭州"];

    /// Pieces names and queries are made of: common characters (so that
    /// many names match and results are cut), rarer ones, brackets of
    /// both widths, full-width and lower-case Latin letters, white space,
    /// an invisible character and places inside a name.
    fn piece() -> impl Strategy<Value = &'static str> {
        use proptest::sample::select;
        prop_oneof![
            6 => select(&["协会", "会", "协", "爱心"][..]),
            3 => select(&["社", "区", "基", "金", "(", ")", "（", "）", "【"][..]),
            2 => select(&["a", "A", "Ａ", "b", " ", "\u{3000}", "\u{200b}", "1", "１"][..]),
            1 => select(PLACES),
        ]
    }

    /// Places then pieces: a name, or a query.
    fn text(places: usize, pieces: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(proptest::sample::select(PLACES), 0..=places),
            proptest::collection::vec(piece(), pieces),
        )
            .prop_map(|(places, pieces)| places.concat() + &pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The index finds what scanning every name finds, in the same
        /// order, with the same truncation: for random queries and for
        /// parts of the names themselves.
        #[test]
        fn the_index_agrees_with_the_linear_scan(
            names in proptest::collection::vec(text(2, 1..7), 0..700),
            queries in proptest::collection::vec(text(1, 0..4), 1..20),
            cuts in proptest::collection::vec((0usize..700, 0usize..40, 1usize..7), 1..20),
        ) {
            let idx = index(&names);
            for query in &queries {
                let (got, oracle) = both(&idx, query);
                prop_assert_eq!(got, oracle, "query {:?}", query);
            }
            for (n, skip, take) in cuts {
                let Some(name) = names.get(n % names.len().max(1)) else { continue };
                let skip = skip % name.chars().count().max(1);
                let part: String = name.chars().skip(skip).take(take).collect();
                let (got, oracle) = both(&idx, &part);
                prop_assert_eq!(got, oracle, "part {:?} of {:?}", part, name);
            }
        }
    }
}
