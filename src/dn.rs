//! LDAP distinguished names (RFC 4514) in one normalised form, so that a DN written in another
//! case or spacing — in a mapping, a `member` value or an entry's own DN — compares equal.
//!
//! The form: attribute types and values lower-cased, spaces around `,`, `+` and `=` and at the ends
//! of values dropped, escapes decoded and re-written the one way RFC 4514 prescribes, and the
//! values of a multi-valued RDN sorted. Values compare case-insensitively, as `cn`, `ou`, `dc` and
//! `uid` do in every common schema.

/// The normalised form of `dn`, or `None` when it is not a distinguished name.
///
/// The empty DN (the root) normalises to the empty string.
pub fn normalise(dn: &str) -> Option<String> {
    let rdns = parse(dn)?;
    let mut out = String::with_capacity(dn.len());
    for (i, mut rdn) in rdns.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        rdn.sort();
        for (j, (kind, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(kind);
            out.push('=');
            out.push_str(&escape(value));
        }
    }
    Some(out)
}

/// Whether normalised DN `dn` lies at or below normalised DN `base`.
pub fn is_within(dn: &str, base: &str) -> bool {
    base.is_empty() || dn == base || dn.ends_with(&format!(",{base}"))
}

/// One attribute type and value of an RDN, both lower-cased, the value unescaped.
type Ava = (String, String);

/// Splits `dn` into RDNs of (type, value) pairs, or `None` when it is malformed.
fn parse(dn: &str) -> Option<Vec<Vec<Ava>>> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Some(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        // The attribute type: a descriptor (letter, then letters, digits, hyphens) or an OID.
        let mut kind = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            kind.push(c);
            chars.next();
        }
        chars.next()?; // '='
        let kind = kind.trim().to_lowercase();
        let descriptor = kind.starts_with(|c: char| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let oid = !kind.is_empty()
            && kind
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !(descriptor || oid) {
            return None;
        }
        // The value, up to an unescaped ',', ';' or '+'.
        let mut bytes = Vec::new();
        // Length of the value without trailing spaces that were not escaped.
        let mut significant = 0;
        let mut started = false;
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                '\\' => {
                    let next = chars.next()?;
                    if next.is_ascii_hexdigit() {
                        let low = chars.next().filter(char::is_ascii_hexdigit)?;
                        let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                        bytes.push(byte);
                    } else {
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                    }
                    started = true;
                    significant = bytes.len();
                }
                ' ' if !started => {}
                _ => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    started = true;
                    if c != ' ' {
                        significant = bytes.len();
                    }
                }
            }
        }
        bytes.truncate(significant);
        let value = String::from_utf8(bytes).ok()?.to_lowercase();
        rdn.push((kind, value));
        match end {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
        }
    }
}

/// Escapes a value the way RFC 4514 §2.4 prescribes.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
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

    #[test]
    fn containment_follows_whole_rdns() {
        assert!(is_within("cn=a,dc=example,dc=com", "dc=example,dc=com"));
        assert!(is_within("dc=example,dc=com", "dc=example,dc=com"));
        assert!(!is_within("cn=a,dc=myexample,dc=com", "example,dc=com"));
        assert!(!is_within("cn=a,dc=other,dc=com", "dc=example,dc=com"));
        assert!(is_within("cn=a", ""));
    }
}
