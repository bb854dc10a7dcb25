//! The console's addresses: group names and user keys percent-encoded into paths and queries.

/// `raw` as one path segment: everything but RFC 3986's unreserved characters percent-encoded
/// (a `/` in a group name stays inside its segment).
pub(super) fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `raw` as a query value.
pub(super) fn query(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// A group's General tab.
pub(super) fn group(stage: &str, name: &str) -> String {
    format!("/groups/{}/{}", segment(stage), segment(name))
}

/// A group's Users tab.
pub(super) fn group_users(stage: &str, name: &str) -> String {
    format!("{}/users", group(stage, name))
}

/// A group's delete confirmation.
pub(super) fn group_delete(stage: &str, name: &str) -> String {
    format!("{}/delete", group(stage, name))
}

/// The groups of `stage`.
pub(super) fn groups_of(stage: &str) -> String {
    format!("/groups?stage={}", query(stage))
}

/// A user's groups and roles.
pub(super) fn user(key: &str) -> String {
    format!("/users?key={}", query(key))
}

/// A run.
pub(super) fn run(id: &str) -> String {
    format!("/runs/{}", segment(id))
}

/// The console's own pages, the only places sign-in sends a person back to.
const CONSOLE_PAGES: [&str; 7] = [
    "/groups",
    "/users",
    "/mappings",
    "/runs",
    "/preview",
    "/refusals",
    "/audit",
];

/// Where sign-in may send a person back to: a path under one of the console's own pages
/// ([`CONSOLE_PAGES`]) of this origin, in visible ASCII only; else the groups.
///
/// Browsers strip tabs and newlines from a `Location` and read `\` as `/`, so `/\t/evil.example`
/// would take a person to `//evil.example`: any byte outside `!`..=`~`, any backslash, and a
/// second `/` or `\` are refused, in `next` as given and once more percent-decoded.
pub(super) fn after_sign_in(next: &str) -> &str {
    let page = CONSOLE_PAGES.iter().any(|page| {
        next.strip_prefix(page)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    });
    let decoded = percent_decoded(next);
    let plain = |path: &[u8], allowed: fn(u8) -> bool| {
        path.first() == Some(&b'/')
            && !matches!(path.get(1), Some(b'/' | b'\\'))
            && path.iter().all(|&b| allowed(b) && b != b'\\')
    };
    // As given: visible ASCII only. Decoded: no control byte (a name may hold a space or `Ä`).
    if page
        && plain(next.as_bytes(), |b| (b'!'..=b'~').contains(&b))
        && plain(&decoded, |b| b >= b' ' && b != 0x7f)
    {
        next
    } else {
        "/groups"
    }
}

/// `raw` with every `%XX` decoded (a `%` not followed by two hex digits stays).
fn percent_decoded(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_their_segment() {
        assert_eq!(
            group("production", "Sales/EU & Co"),
            "/groups/production/Sales%2FEU%20%26%20Co"
        );
        assert_eq!(
            user("ana+1@example.com"),
            "/users?key=ana%2B1%40example.com"
        );
        assert_eq!(segment("Ärzte"), "%C3%84rzte");
    }

    #[test]
    fn sign_in_sends_back_only_to_console_pages() {
        assert_eq!(
            after_sign_in("/groups/qa/Testers/users"),
            "/groups/qa/Testers/users"
        );
        for good in [
            "/groups?stage=qa&q=test",
            "/groups/qa/Sales%2FEU%20%26%20Co/users",
            "/groups/qa/%3Cb%3E%C3%84rzte%3C%2Fb%3E",
            "/users?key=ana%2B1%40example.com",
            "/mappings",
            "/runs/r-1",
            "/preview",
            "/refusals",
            "/audit?user=ana%40example.com",
        ] {
            assert_eq!(after_sign_in(good), good);
        }
        for bad in [
            "//evil.example/x",
            "https://evil.example/",
            "/v1/admin/groups",
            "/sign-in",
            "groups",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\u{7f}/evil.example",
            "/\u{1}/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/groups\t/x",
            "/groups/%09/x",
            "/groups/%5C/x",
            "/groups/a b",
            "/groupsevil",
            "/evil.example",
            "/",
            "",
        ] {
            assert_eq!(after_sign_in(bad), "/groups", "{bad}");
        }
    }
}
