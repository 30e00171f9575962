//! Normalization of raw keys: NFKC (full-width forms), separators, case.

use unicode_normalization::UnicodeNormalization;

/// Characters feeds put inside codes for readability: white space of every
/// kind and the dash family. NFKC has already folded the full-width forms.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '_' | '\u{200b}' | '\u{feff}'
        )
}

/// Normalizes a raw key into `out` (cleared first): NFKC, separators
/// removed, ASCII letters upper-cased. Letters outside the USCC character set
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
/// to `(` `)`, white space and separators removed, and a leading province,
/// city or district prefix (`浙江省`, `杭州市`, `西湖区` …) dropped so that a
/// registry name and a court's shorter form meet.
pub fn normalize_name(raw: &str) -> String {
    let folded: String = raw
        .nfkc()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{200b}' | '\u{feff}'))
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
    fn names_meet_across_feeds() {
        assert_eq!(
            normalize_name("浙江省杭州市西湖区 阳光（公益）服务中心"),
            normalize_name("西湖区阳光(公益)服务中心")
        );
        assert_eq!(normalize_name("杭州市"), "杭州市");
        assert_eq!(normalize_name("ＡＢＣ协会"), "ABC协会");
    }
}
