//! `${NAME}` and `${NAME:-default}` references in URLs, so one project runs
//! against the demo feeds on a laptop and the departments' endpoints at night.

/// Expands environment references with `lookup`; an unset variable without
/// a default is an error naming it.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated \"${{\" in {text:?}"))?;
        let reference = &after[..end];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "found \"${{{reference}}}\", expected ${{NAME}} or ${{NAME:-default}} with NAME of letters, digits and _"
            ));
        }
        match (lookup(name), default) {
            (Some(value), _) if !value.is_empty() => out.push_str(&value),
            (_, Some(default)) => out.push_str(default),
            _ => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The expansions of one template's variables, for display: every value a
/// `${NAME}` expanded to (a default is configuration, not a secret) is
/// shown as `${NAME}`, and so is each piece of it between `/ ? & = : @ #`
/// of six characters or more (a library's error shows a bucket as a host,
/// a prefix as a query value). Values shorter than four characters are
/// left as they are (they hide nothing and would garble the text).
#[derive(Debug, Clone, Default)]
pub struct Redactor(Vec<(String, String)>);

impl Redactor {
    /// The variables `text` references, looked up with `lookup`.
    pub fn new(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut values = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = after[..end].split(":-").next().unwrap_or_default();
            if let Some(value) = lookup(name).filter(|v| v.chars().count() >= 4) {
                let reference = format!("${{{name}}}");
                // A URL or path is shown in pieces too (a bucket as a host,
                // a prefix as a query value): each piece of six characters
                // or more goes as well.
                for piece in value.split(['/', '?', '&', '=', ':', '@', '#']) {
                    if piece.chars().count() >= 6 && piece != value {
                        values.push((piece.to_string(), reference.clone()));
                    }
                }
                values.push((value, reference));
            }
            rest = &after[end + 1..];
        }
        // The longest first, so a value containing another goes whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
        Self(values)
    }

    /// `text` with every expanded value replaced by its reference.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, reference) in &self.0 {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), reference);
            }
            // The same value as a URL shows it (percent-encoded).
            let encoded =
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
            if encoded != *value && out.contains(encoded.as_str()) {
                out = out.replace(encoded.as_str(), reference);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions_are_shown_as_their_references() {
        let env = |n: &str| match n {
            "BUCKET" => Some("s3://secret-bucket/p".to_string()),
            "TOKEN" => Some("t0k/en=".to_string()),
            "SHORT" => Some("ab".to_string()),
            _ => None,
        };
        let r = Redactor::new("${BUCKET}/x?k=${TOKEN}&${SHORT}&${NOPE:-demo}", env);
        assert_eq!(
            r.apply("cannot open s3://secret-bucket/p/x?k=t0k%2Fen%3D: ab demo"),
            "cannot open ${BUCKET}/x?k=${TOKEN}: ab demo"
        );
        assert_eq!(Redactor::default().apply("same"), "same");
        assert_eq!(
            r.apply("GET http://127.0.0.1:9000/secret-bucket?list-type=2&prefix=p"),
            "GET http://127.0.0.1:9000/${BUCKET}?list-type=2&prefix=p"
        );
    }

    #[test]
    fn references_expand() {
        let env = |n: &str| (n == "FEEDS").then(|| "s3://bucket/feeds".to_string());
        assert_eq!(
            expand_env("${FEEDS}/court/*.ndjson", env).as_deref(),
            Ok("s3://bucket/feeds/court/*.ndjson")
        );
        assert_eq!(
            expand_env("${NOPE:-demo/feeds}/x", env).as_deref(),
            Ok("demo/feeds/x")
        );
        assert!(expand_env("${NOPE}/x", env).is_err());
        assert!(expand_env("${FEEDS/x", env).is_err());
    }
}
