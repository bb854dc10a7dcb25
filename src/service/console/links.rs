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

/// Where sign-in may send a person back to: a console path of this origin, never `/v1/…`,
/// another host (`//host`) or the sign-in page itself; else the groups.
pub(super) fn after_sign_in(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if local && !next.starts_with("/v1/") && !next.starts_with("/sign-") {
        next
    } else {
        "/groups"
    }
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
        for bad in [
            "//evil.example/x",
            "https://evil.example/",
            "/v1/admin/groups",
            "/sign-in",
            "groups",
            "/\\evil",
        ] {
            assert_eq!(after_sign_in(bad), "/groups", "{bad}");
        }
    }
}
