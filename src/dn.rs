//! LDAP distinguished names (RFC 4514) in one normalised form, so that a DN written in another
//! case or spacing — in a mapping, a `member` value or an entry's own DN — compares equal.
//!
//! The form: attribute types and values lower-cased, spaces around `,`, `+` and `=` and at the ends
//! of values dropped, escapes decoded and re-written the one way RFC 4514 prescribes, and the
//! values of a multi-valued RDN sorted. Values compare case-insensitively, as `cn`, `ou`, `dc` and
//! `uid` do in every common schema.

use std::borrow::Cow;

/// The normalised form of `dn`, or `None` when it is not a distinguished name.
///
/// The empty DN (the root) normalises to the empty string. One pass, writing the result as it
/// goes: a read normalises every `member` value, a hundred thousand of them and more.
pub fn normalise(dn: &str) -> Option<String> {
    normalised(dn).map(Cow::into_owned)
}

/// [`normalise`], borrowing `dn` when it is in normal form already (most DNs an OpenLDAP server
/// returns are).
pub fn normalised(dn: &str) -> Option<Cow<'_, str>> {
    if let Some(plain) = plain(dn) {
        return Some(plain);
    }
    parse_and_write(dn).map(Cow::Owned)
}

/// The common case without parsing: a DN of letters, digits, `.`, `_`, `@`, `-` and spaces inside
/// values only, whose normal form is its lower-case copy. `None` when it needs the full parse.
fn plain(dn: &str) -> Option<Cow<'_, str>> {
    let bytes = dn.as_bytes();
    if bytes.first().is_none_or(|&b| b == b' ') || bytes.last() == Some(&b' ') {
        return None;
    }
    // One pass: each RDN is a descriptor (a letter, then letters, digits, hyphens), `=`, then a
    // value of plain characters; spaces only inside values, never beside a separator.
    let mut in_type = true;
    let mut type_start = true;
    let mut upper = false;
    for (i, &c) in bytes.iter().enumerate() {
        upper |= c.is_ascii_uppercase();
        if in_type {
            match c {
                b'a'..=b'z' | b'A'..=b'Z' => {}
                b'0'..=b'9' | b'-' if !type_start => {}
                b'=' if !type_start => in_type = false,
                _ => return None,
            }
            type_start = false;
            continue;
        }
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'@' | b'-' | b'=' => {}
            b',' => (in_type, type_start) = (true, true),
            // Not first or last (checked above); spaces beside a separator are insignificant.
            b' ' if !matches!(bytes[i - 1], b',' | b'=' | b' ')
                && !matches!(bytes[i + 1], b',' | b'=' | b' ') => {}
            _ => return None,
        }
    }
    if in_type {
        return None;
    }
    Some(if upper {
        Cow::Owned(dn.to_ascii_lowercase())
    } else {
        Cow::Borrowed(dn)
    })
}

/// The full RFC 4514 parse, writing the normal form as it goes.
fn parse_and_write(dn: &str) -> Option<String> {
    let bytes = dn.as_bytes();
    if bytes.iter().all(|&b| b == b' ') {
        return Some(String::new());
    }
    let mut out = String::with_capacity(dn.len());
    // The (type=value) texts of a multi-valued RDN, sorted before they are written.
    let mut pending: Vec<String> = Vec::new();
    let mut value = Vec::with_capacity(64);
    let mut i = 0;
    loop {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            i += 1;
        }
        if i == bytes.len() {
            return None;
        }
        let kind = dn[start..i].trim_end();
        if !valid_type(kind) {
            return None;
        }
        i += 1;
        let end = read_value(bytes, &mut i, &mut value)?;
        let text = std::str::from_utf8(&value).ok()?;
        if end == Some(b'+') || !pending.is_empty() {
            let mut ava = String::with_capacity(kind.len() + text.len() + 1);
            write_ava(&mut ava, kind, text);
            pending.push(ava);
            if end != Some(b'+') {
                pending.sort();
                out.push_str(&pending.join("+"));
                pending.clear();
            }
        } else {
            write_ava(&mut out, kind, text);
        }
        match end {
            None => return Some(out),
            Some(b'+') => {}
            Some(_) => out.push(','),
        }
    }
}

/// Whether normalised DN `dn` lies at or below normalised DN `base`.
pub fn is_within(dn: &str, base: &str) -> bool {
    base.is_empty() || dn == base || dn.ends_with(&format!(",{base}"))
}

/// An attribute type: a descriptor (a letter, then letters, digits, hyphens) or an OID.
fn valid_type(kind: &str) -> bool {
    let descriptor = kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    let oid = !kind.is_empty()
        && kind
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    descriptor || oid
}

/// Reads a value from `bytes[*i..]` into `value`, unescaped, without the spaces around it, up to
/// an unescaped `,`, `;` or `+` (returned; `None` at the end). `None` inside: a broken escape.
fn read_value(bytes: &[u8], i: &mut usize, value: &mut Vec<u8>) -> Option<Option<u8>> {
    value.clear();
    // Length of the value without trailing spaces that were not escaped.
    let mut significant = 0;
    let mut started = false;
    while *i < bytes.len() {
        let c = bytes[*i];
        *i += 1;
        match c {
            b',' | b';' | b'+' => {
                value.truncate(significant);
                return Some(Some(c));
            }
            b'\\' => {
                let next = *bytes.get(*i)?;
                if next.is_ascii_hexdigit() {
                    let pair = bytes.get(*i..*i + 2)?;
                    let hex = std::str::from_utf8(pair).ok()?;
                    value.push(u8::from_str_radix(hex, 16).ok()?);
                    *i += 2;
                } else {
                    let width = match next {
                        0..0x80 => 1,
                        0xc0..0xe0 => 2,
                        0xe0..0xf0 => 3,
                        0xf0.. => 4,
                        _ => return None,
                    };
                    value.extend_from_slice(bytes.get(*i..*i + width)?);
                    *i += width;
                }
                started = true;
                significant = value.len();
            }
            b' ' if !started => {}
            _ => {
                value.push(c);
                started = true;
                if c != b' ' {
                    significant = value.len();
                }
            }
        }
    }
    value.truncate(significant);
    Some(None)
}

/// Writes `type=value`, both lower-cased, the value escaped the one way RFC 4514 §2.4 prescribes.
fn write_ava(out: &mut String, kind: &str, value: &str) {
    out.extend(kind.chars().map(|c| c.to_ascii_lowercase()));
    out.push('=');
    if value.is_ascii() {
        let last = value.len().saturating_sub(1);
        for (i, c) in value.bytes().enumerate() {
            escape_into(out, char::from(c.to_ascii_lowercase()), i == 0, i == last);
        }
    } else {
        let lower = value.to_lowercase();
        let last = lower.chars().count().saturating_sub(1);
        for (i, c) in lower.chars().enumerate() {
            escape_into(out, c, i == 0, i == last);
        }
    }
}

fn escape_into(out: &mut String, c: char, first: bool, last: bool) {
    match c {
        '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
            out.push('\\');
            out.push(c);
        }
        '#' if first => out.push_str("\\#"),
        ' ' if first || last => out.push_str("\\ "),
        '\0' => out.push_str("\\00"),
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_spacing_and_escapes_do_not_matter() {
        let canonical = normalise("cn=admins,ou=groups,dc=example,dc=com").unwrap();
        for other in [
            "CN=Admins,OU=Groups,DC=Example,DC=Com",
            "cn = admins , ou=groups,dc=example, dc=com",
            "cn=\\61dmins,ou=groups,dc=example,dc=com",
            "cn=admins;ou=groups;dc=example;dc=com",
            "  cn=admins,ou=groups,dc=example,dc=com  ",
        ] {
            assert_eq!(normalise(other).unwrap(), canonical, "{other}");
        }
        assert_ne!(
            normalise("cn=admins2,ou=groups,dc=example,dc=com").unwrap(),
            canonical
        );
    }

    #[test]
    fn special_characters_survive_and_are_escaped_one_way() {
        let dn = normalise("cn=R\\2CD \\28EMEA\\29 *\\5C,ou=groups,dc=x").unwrap();
        assert_eq!(dn, "cn=r\\,d (emea) *\\\\,ou=groups,dc=x");
        assert_eq!(
            normalise("cn=R\\,D (EMEA) *\\\\,ou=Groups,dc=x").unwrap(),
            dn
        );
        assert_eq!(
            normalise("cn=\\ lead\\ ,dc=x").unwrap(),
            "cn=\\ lead\\ ,dc=x"
        );
        assert_eq!(normalise("cn=a\\00b,dc=x").unwrap(), "cn=a\\00b,dc=x");
        assert_eq!(normalise("cn=\\#1,dc=x").unwrap(), "cn=\\#1,dc=x");
    }

    #[test]
    fn multi_valued_rdns_sort_their_values() {
        assert_eq!(
            normalise("uid=ana+cn=Ana Lee,dc=x").unwrap(),
            normalise("CN=ana lee + UID=ANA,dc=x").unwrap()
        );
    }

    #[test]
    fn non_dns_are_refused() {
        for text in ["Marketing Team", "R&D = research", "cn=a,=b", "cn=a\\"] {
            assert_eq!(normalise(text), None, "{text}");
        }
        assert_eq!(normalise("").as_deref(), Some(""));
        assert_eq!(normalise("2.5.4.3=x").as_deref(), Some("2.5.4.3=x"));
    }

    proptest::proptest! {
        /// Any DN written with ldap3's RFC 4514 escaping, in any case and with spaces around the
        /// separators, normalises to one form, and normalising that form changes nothing.
        #[test]
        fn every_spelling_of_a_dn_normalises_alike(
            rdns in proptest::collection::vec(("[a-z][a-z0-9-]{0,5}", "[a-zA-Z0-9 ,+=#;<>\\\\\"()*é]{1,12}"), 1..5),
            upper in proptest::bool::ANY,
            spaced in proptest::bool::ANY,
        ) {
            let plain: Vec<String> = rdns
                .iter()
                .map(|(kind, value)| format!("{kind}={}", ldap3::dn_escape(value.as_str())))
                .collect();
            let canonical = normalise(&plain.join(",")).expect("an escaped DN parses");
            let other: Vec<String> = plain
                .iter()
                .map(|rdn| if upper { rdn.to_uppercase() } else { rdn.clone() })
                .map(|rdn| if spaced { rdn.replacen('=', " = ", 1) } else { rdn })
                .collect();
            let separator = if spaced { " , " } else { "," };
            let other = normalise(&other.join(separator)).expect("a respelt DN parses");
            proptest::prop_assert_eq!(&other, &canonical);
            let again = normalise(&canonical);
            proptest::prop_assert_eq!(again.as_ref(), Some(&canonical));
        }
    }

    proptest::proptest! {
        /// The shortcut for plain DNs gives what the full parse gives.
        #[test]
        fn the_plain_shortcut_agrees_with_the_parse(
            rdns in proptest::collection::vec(("[a-cA-C0-2 -]{1,4}", "[a-cA-C0-2 .=_@-]{0,6}"), 1..4),
            noise in "[a-cA-C0-2 .=,_@-]{0,24}",
        ) {
            let dn: Vec<String> = rdns.iter().map(|(k, v)| format!("{k}={v}")).collect();
            for dn in [dn.join(","), noise] {
                if let Some(plain) = plain(&dn) {
                    proptest::prop_assert_eq!(Some(plain.into_owned()), parse_and_write(&dn), "{}", dn);
                }
            }
        }
    }

    #[test]
    fn containment_follows_whole_rdns() {
        assert!(is_within("cn=a,dc=example,dc=com", "dc=example,dc=com"));
        assert!(is_within("dc=example,dc=com", "dc=example,dc=com"));
        assert!(!is_within("cn=a,dc=myexample,dc=com", "example,dc=com"));
        assert!(!is_within("cn=a,dc=other,dc=com", "dc=example,dc=com"));
        assert!(is_within("cn=a", ""));
    }
}
