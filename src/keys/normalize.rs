//! Normalization of raw keys: NFKC (full-width forms), invisible
//! characters, separators, case.

use unicode_normalization::UnicodeNormalization;

/// Invisible characters: every format character (general category Cf) and
/// every other default-ignorable code point. The Cf ranges are Unicode
/// 16.0.0's `DerivedGeneralCategory.txt` (as generated into regex-syntax's
/// `general_category::FORMAT`); the others are the rest of
/// `Default_Ignorable_Code_Point` in `DerivedCoreProperties.txt` (the
/// combining grapheme joiner, Hangul fillers, variation selectors and
/// unassigned ignorables). Sorted, disjoint, for a binary search.
const INVISIBLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` is invisible: a format character (Cf: zero-width spaces and
/// joiners, the word joiner, bidi controls, the soft hyphen, the BOM …) or
/// another default-ignorable code point. Keys and names drop them.
pub fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    INVISIBLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The invisible characters of a raw key, each with its 1-based position
/// among the key's characters: what `qinglian uscc check` reports as
/// removed.
pub fn invisible_chars(raw: &str) -> Vec<(usize, char)> {
    if raw.is_ascii() {
        return Vec::new();
    }
    raw.chars()
        .enumerate()
        .filter(|(_, c)| is_invisible(*c))
        .map(|(i, c)| (i + 1, c))
        .collect()
}

/// Characters feeds put inside codes for readability, or leave there
/// unseen: white space of every kind (NBSP and the ideographic space
/// included), the dash family and every invisible character. NFKC has
/// already folded the full-width forms.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '_')
        || is_invisible(c)
}

/// Normalizes a raw key into `out` (cleared first): NFKC, separators and
/// invisible characters removed, ASCII letters upper-cased. Letters outside the USCC character set
/// are kept: repairing them is [`classify`](super::classify)'s decision, and
/// only as a flagged suggestion.
///
/// ASCII input, the common case, takes a path without Unicode tables.
pub fn normalize_into(raw: &str, out: &mut String) {
    out.clear();
    if raw.is_ascii() {
        out.extend(
            raw.chars()
                .filter(|c| !is_separator(*c))
                .map(|c| c.to_ascii_uppercase()),
        );
    } else {
        out.extend(
            raw.nfkc()
                .filter(|c| !is_separator(*c))
                .map(|c| c.to_ascii_uppercase()),
        );
        // Removing a separator can leave a combining mark next to a letter
        // it composes with ("K¸" → "K" + U+0327); compose once more so that
        // normalizing a normalized key changes nothing.
        if !unicode_normalization::is_nfkc(out) {
            let composed: String = out.nfkc().collect();
            *out = composed;
        }
    }
}

/// Normalizes a raw key, see [`normalize_into`].
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    normalize_into(raw, &mut out);
    out
}

/// Normalizes an organization name for matching across feeds: NFKC (folds
/// full-width Latin letters, digits and brackets), every bracket form unified
/// to `(` `)`, white space and invisible characters removed, and a leading province,
/// city or district prefix (`浙江省`, `杭州市`, `西湖区` …) dropped so that a
/// registry name and a court's shorter form meet.
pub fn normalize_name(raw: &str) -> String {
    let folded: String = raw
        .nfkc()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .map(|c| match c {
            '[' | '【' | '〔' | '〖' | '（' => '(',
            ']' | '】' | '〕' | '〗' | '）' => ')',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    strip_place_prefixes(&folded).to_string()
}

const PLACE_PREFIXES: &[&str] = &[
    "浙江省",
    "浙江",
    "杭州市",
    "杭州",
    "上城区",
    "下城区",
    "江干区",
    "拱墅区",
    "西湖区",
    "滨江区",
    "萧山区",
    "余杭区",
    "富阳区",
    "临安区",
    "临平区",
    "钱塘区",
    "桐庐县",
    "淳安县",
    "建德市",
];

fn strip_place_prefixes(mut name: &str) -> &str {
    // Prefixes stack ("浙江省杭州市西湖区…"); strip while one matches, but never
    // down to nothing: a name that is only a place is still a name.
    loop {
        let Some(rest) = PLACE_PREFIXES
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .filter(|rest| !rest.is_empty())
        else {
            return name;
        };
        name = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_spaces_hyphens_and_case_fold() {
        for dirty in [
            "５３３３００００５０１８７４０６４Ｂ",
            " 53330000 501874064b ",
            "5333-0000-5018-7406-4B",
            "\u{feff}53330000501874064B\r",
            "5333\u{3000}0000501874064B",
        ] {
            assert_eq!(normalize(dirty), "53330000501874064B", "{dirty:?}");
        }
    }

    #[test]
    fn the_invisible_table_is_sorted_and_disjoint() {
        for w in INVISIBLE.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:?}");
        }
        for c in [
            '\u{ad}',
            '\u{200b}',
            '\u{200d}',
            '\u{2060}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0001}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['0', 'A', '协', '\u{ac}', '\u{2070}', '\u{fffc}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
    }

    #[test]
    fn names_meet_across_feeds() {
        assert_eq!(
            normalize_name("浙江省杭州市西湖区 阳光（公益）服务中心"),
            normalize_name("西湖区阳光(公益)服务中心")
        );
        assert_eq!(normalize_name("杭州市"), "杭州市");
        assert_eq!(normalize_name("ＡＢＣ协会"), "ABC协会");
    }
}
