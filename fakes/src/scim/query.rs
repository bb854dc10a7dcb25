//! List queries as AWS takes them: `filter` limited to `attr eq "value"` clauses joined by
//! `and` (anything else is 400 `invalidFilter`), `startIndex` (1-based) + `count` (clamped to
//! the page cap, 400 below 1) or the opaque `cursor` (empty for the first page) answered with
//! `nextCursor` until the last page, and the ListResponse envelope.

use std::collections::HashMap;

use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::invalid;

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Query parameters.
pub(super) type Params = HashMap<String, String>;

/// One `attr eq "value"` clause: the attribute lower-cased, the value as sent.
pub(super) type Clause = (String, String);

fn bad_filter(filter: &str, why: &str) -> Response {
    invalid(
        "invalidFilter",
        &format!(
            "Unsupported filter {filter:?}: {why}. Only 'eq' clauses joined by 'and' are supported."
        ),
    )
}

enum Token {
    Word(String),
    Text(String),
}

fn tokens(filter: &str) -> Result<Vec<Token>, Response> {
    let mut out = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e) => text.push(e),
                        None => return Err(bad_filter(filter, "unterminated string")),
                    },
                    Some(ch) => text.push(ch),
                    None => return Err(bad_filter(filter, "unterminated string")),
                }
            }
            out.push(Token::Text(text));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '"' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            out.push(Token::Word(word));
        }
    }
    Ok(out)
}

/// Parses a filter into its `eq` clauses.
pub(super) fn parse_filter(filter: &str) -> Result<Vec<Clause>, Response> {
    let tokens = tokens(filter)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        match rest {
            [
                Token::Word(attr),
                Token::Word(op),
                Token::Text(value),
                tail @ ..,
            ] => {
                let plain = attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
                if !plain {
                    return Err(bad_filter(filter, "unsupported attribute path"));
                }
                if !op.eq_ignore_ascii_case("eq") {
                    return Err(bad_filter(filter, &format!("operator {op:?}")));
                }
                clauses.push((attr.to_ascii_lowercase(), value.clone()));
                rest = tail;
            }
            _ => return Err(bad_filter(filter, "expected attribute eq \"value\"")),
        }
        match rest {
            [] => return Ok(clauses),
            [Token::Word(and), tail @ ..]
                if and.eq_ignore_ascii_case("and") && !tail.is_empty() =>
            {
                rest = tail
            }
            _ => return Err(bad_filter(filter, "only 'and' may join clauses")),
        }
    }
}

/// How a list is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Paging {
    /// `startIndex` (1-based) and page size.
    Index { start: usize, count: usize },
    /// An offset from a cursor, and page size.
    Cursor { offset: usize, count: usize },
}

fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("scim-cursor:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("scim-cursor:")?
        .parse()
        .ok()
}

/// The paging a request asks for, pages holding at most `cap`.
pub(super) fn paging(params: &Params, cap: usize) -> Result<Paging, Response> {
    let count = match params.get("count") {
        None => cap,
        Some(c) => match c.trim().parse::<i64>() {
            Ok(n) if n >= 1 => (n as usize).min(cap),
            _ => return Err(invalid("invalidValue", "count must be a positive integer.")),
        },
    };
    match (params.get("cursor"), params.get("startIndex")) {
        (Some(_), Some(_)) => Err(invalid(
            "invalidValue",
            "cursor and startIndex cannot be used together.",
        )),
        (Some(c), None) if c.is_empty() => Ok(Paging::Cursor { offset: 0, count }),
        (Some(c), None) => match decode_cursor(c) {
            Some(offset) => Ok(Paging::Cursor { offset, count }),
            None => Err(invalid(
                "invalidCursor",
                "The cursor is invalid or expired.",
            )),
        },
        (None, Some(s)) => match s.trim().parse::<i64>() {
            Ok(n) => Ok(Paging::Index {
                start: n.max(1) as usize,
                count,
            }),
            Err(_) => Err(invalid("invalidValue", "startIndex must be an integer.")),
        },
        (None, None) => Ok(Paging::Index { start: 1, count }),
    }
}

/// The ListResponse for the page `paging` picks out of `selected`.
pub(super) fn list<T>(selected: &[T], paging: Paging, render: impl Fn(&T) -> Value) -> Value {
    let (skip, count) = match paging {
        Paging::Index { start, count } => (start - 1, count),
        Paging::Cursor { offset, count } => (offset, count),
    };
    let page: Vec<Value> = selected.iter().skip(skip).take(count).map(render).collect();
    let mut v = json!({
        "schemas": [LIST_SCHEMA], "totalResults": selected.len(), "itemsPerPage": page.len(),
        "Resources": page,
    });
    match paging {
        Paging::Index { start, .. } => v["startIndex"] = json!(start),
        Paging::Cursor { .. } => {
            if skip + count < selected.len() {
                v["nextCursor"] = json!(encode_cursor(skip + count));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_to_eq_clauses_only() {
        let c = parse_filter(r#"id eq "g1" AND members EQ "u \"2\"""#).unwrap();
        assert_eq!(
            c,
            vec![
                ("id".to_owned(), "g1".to_owned()),
                ("members".to_owned(), "u \"2\"".to_owned())
            ]
        );
        for bad in [
            r#"userName ne "x""#,
            r#"userName eq "x" or userName eq "y""#,
            r#"(userName eq "x")"#,
            r#"userName eq x"#,
            r#"userName eq "x" and"#,
            r#"members[value eq "x"]"#,
            r#"userName pr"#,
            r#"userName eq "x"#,
            "",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor("nonsense"), None);
    }
}
