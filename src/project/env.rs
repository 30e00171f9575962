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

#[cfg(test)]
mod tests {
    use super::*;

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
