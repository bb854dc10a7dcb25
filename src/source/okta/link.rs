//! The `Link` header of RFC 8288 as Okta pages with it: `<url>; rel="next"`, several links
//! comma-joined in one header value or sent as separate header lines (reference/idp-apis.md §2.3).

use reqwest::header::HeaderMap;

/// The `rel="next"` target among every `Link` header line, if any.
pub fn next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(links)
        .find(|(_, params)| is_next(params))
        .map(|(url, _)| url.to_owned())
}

/// Splits one header value into (target, parameters) pairs; a comma inside `<…>` is part of
/// the target.
fn links(value: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = &rest[open + 1..open + close];
        let after = &rest[open + close + 1..];
        // Parameters run to the next link's '<'; the comma between links is trimmed later.
        let end = after.find('<').unwrap_or(after.len());
        out.push((target, &after[..end]));
        rest = &after[end..];
    }
    out
}

fn is_next(params: &str) -> bool {
    params.split(';').any(|p| {
        let p = p.trim().trim_end_matches(',').trim();
        let Some((name, value)) = p.split_once('=') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("rel")
            && value
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(reqwest::header::LINK, line.parse().unwrap());
        }
        h
    }

    #[test]
    fn next_is_found_comma_joined_or_on_separate_lines() {
        let joined = headers(&[
            r#"<https://o.test/api/v1/groups?limit=2>; rel="self", <https://o.test/api/v1/groups?after=00g2&limit=2>; rel="next""#,
        ]);
        assert_eq!(
            next(&joined).as_deref(),
            Some("https://o.test/api/v1/groups?after=00g2&limit=2")
        );
        let separate = headers(&[
            r#"<https://o.test/api/v1/groups?after=00g2&limit=2>; rel="next""#,
            r#"<https://o.test/api/v1/groups?limit=2>; rel="self""#,
        ]);
        assert_eq!(
            next(&separate).as_deref(),
            Some("https://o.test/api/v1/groups?after=00g2&limit=2")
        );
        assert_eq!(next(&headers(&[r#"<https://o.test/x>; rel="self""#])), None);
        assert_eq!(next(&HeaderMap::new()), None);
        let comma_in_url = headers(&[r#"<https://o.test/x?a=1,2>; rel=next"#]);
        assert_eq!(
            next(&comma_in_url).as_deref(),
            Some("https://o.test/x?a=1,2")
        );
    }
}
