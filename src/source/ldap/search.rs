//! Searches that return everything or fail: RFC 2696 paging over the whole result, Active
//! Directory range retrieval for long member lists, and case-insensitive attribute access.

use std::collections::HashMap;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Scope, SearchEntry};

use crate::source::SourceError;

use super::conn::{Session, describe, operation_error, result_error};

/// One entry as the server returned it, attribute names kept as sent.
pub type Entry = SearchEntry;

/// Runs a paged subtree search and returns every entry, or fails: a page that errs, a broken
/// connection or a non-success result fails the whole search (never a partial result).
pub async fn paged(
    session: &mut Session<'_>,
    what: &str,
    base: &str,
    filter: &str,
    attrs: &[&str],
) -> Result<Vec<Entry>, SourceError> {
    let config = session.config;
    let doing = format!("searching {what} under {base:?}");
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size as i32)),
    ];
    let mut stream = session
        .ldap
        .with_timeout(config.timeout)
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
        .await
        .map_err(|e| operation_error(&config.url, &doing, &e))?;
    let mut entries = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(entry)) => entries.push(construct(entry, &config.url)?),
            Ok(None) => break,
            Err(e) => return Err(operation_error(&config.url, &doing, &e)),
        }
    }
    let result = stream.finish().await;
    // The adapter asks again for every page the server fills.
    session.requests += 1 + entries.len() as u64 / u64::from(config.page_size);
    if result.rc == 32 {
        // A missing base DN is the configuration's fault, not the network's.
        return Err(SourceError::Invalid(format!(
            "{doing} on {} failed: {}: the base DN does not exist",
            config.url,
            describe(result.rc, &result.text)
        )));
    }
    if result.rc != 0 {
        return Err(result_error(result.rc)(format!(
            "{doing} on {} failed after {} entries: {}",
            config.url,
            entries.len(),
            describe(result.rc, &result.text)
        )));
    }
    tracing::debug!(what, base, entries = entries.len(), "LDAP search done.");
    Ok(entries)
}

/// Reads one entry's attributes (a base-scope search); `None` when the server has no such entry.
pub async fn base(
    session: &mut Session<'_>,
    dn: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, SourceError> {
    let config = session.config;
    let doing = format!("reading {dn:?}");
    session.requests += 1;
    let result = session
        .ldap
        .with_timeout(config.timeout)
        .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
        .await
        .map_err(|e| operation_error(&config.url, &doing, &e))?;
    match result.1.rc {
        0 => {}
        32 => return Ok(None),
        rc => {
            return Err(result_error(rc)(format!(
                "{doing} on {} failed: {}",
                config.url,
                describe(rc, &result.1.text)
            )));
        }
    }
    match result.0.into_iter().next() {
        Some(entry) => Ok(Some(construct(entry, &config.url)?)),
        None => Ok(None),
    }
}

/// Parses a raw entry; ldap3 panics on malformed BER, which here fails the read instead.
fn construct(entry: ldap3::ResultEntry, url: &str) -> Result<Entry, SourceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        SearchEntry::construct(entry)
    }))
    .map_err(|_| SourceError::Invalid(format!("{url} sent a malformed entry")))
}

/// The text values of attribute `name` (matched case-insensitively, without options).
pub fn values<'a>(entry: &'a Entry, name: &str) -> &'a [String] {
    lookup(&entry.attrs, name).map_or(&[], Vec::as_slice)
}

/// The first text value of attribute `name`.
pub fn first<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    values(entry, name).first().map(String::as_str)
}

/// The first binary value of attribute `name` (values that are not UTF-8 land here).
pub fn first_binary<'a>(entry: &'a Entry, name: &str) -> Option<&'a [u8]> {
    lookup(&entry.bin_attrs, name)
        .and_then(|v| v.first())
        .map(Vec::as_slice)
}

fn lookup<'a, V>(map: &'a HashMap<String, V>, name: &str) -> Option<&'a V> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The values of attribute `name` that came back range-tagged, completed: Active Directory's
/// range retrieval. Empty when the attribute came back whole (read those with [`values`]).
///
/// A group over MaxValRange comes back with `member;range=0-1499` instead of `member`; the rest
/// is asked for with `member;range=1500-*` on the group's DN, then the next range, until the
/// returned name ends in `-*` (MS-ADTS 3.1.1.3.1.3.3).
pub async fn ranged_values(
    session: &mut Session<'_>,
    entry: &Entry,
    name: &str,
) -> Result<Vec<String>, SourceError> {
    let config = session.config;
    let Some((mut next, chunk)) = ranged(entry, name) else {
        return Ok(Vec::new());
    };
    let mut out = chunk.to_vec();
    let mut steps = 0;
    while let Some(low) = next {
        steps += 1;
        if steps > 100_000 {
            return Err(SourceError::Invalid(format!(
                "{}: range retrieval of {name} on {:?} does not end",
                config.url, entry.dn
            )));
        }
        let wanted = format!("{name};range={low}-*");
        let Some(more) = base(session, &entry.dn, &[wanted.as_str()]).await? else {
            return Err(SourceError::Unavailable(format!(
                "{}: group {:?} vanished during range retrieval",
                config.url, entry.dn
            )));
        };
        let Some((following, values)) = ranged(&more, name) else {
            return Err(SourceError::Invalid(format!(
                "{}: asked for {wanted} on {:?} and got no ranged values back",
                config.url, entry.dn
            )));
        };
        if following.is_some_and(|f| f <= low) {
            return Err(SourceError::Invalid(format!(
                "{}: range retrieval of {name} on {:?} went backwards",
                config.url, entry.dn
            )));
        }
        out.extend_from_slice(values);
        next = following;
    }
    Ok(out)
}

/// The values of a range-tagged attribute `name;range=L-H` of `entry`, with the low bound of the
/// next range (`None` when H is `*`, the last chunk). `None` when the attribute is not ranged.
fn ranged<'a>(entry: &'a Entry, name: &str) -> Option<(Option<u64>, &'a [String])> {
    let prefix = format!("{};range=", name.to_ascii_lowercase());
    entry.attrs.iter().find_map(|(key, values)| {
        let range = key.to_ascii_lowercase();
        let range = range.strip_prefix(&prefix)?.to_owned();
        let (_, high) = range.split_once('-')?;
        let next = if high == "*" {
            None
        } else {
            Some(high.parse::<u64>().ok()? + 1)
        };
        Some((next, values.as_slice()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[(&str, &[&str])]) -> Entry {
        SearchEntry {
            dn: "cn=g,dc=x".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn attributes_match_case_insensitively() {
        let e = entry(&[("Mail", &["a@x"]), ("entryUUID", &["1"])]);
        assert_eq!(first(&e, "mail"), Some("a@x"));
        assert_eq!(first(&e, "ENTRYUUID"), Some("1"));
        assert!(values(&e, "cn").is_empty());
    }

    #[test]
    fn ranged_attributes_give_the_next_low_bound() {
        let e = entry(&[("Member;Range=0-1499", &["a", "b"])]);
        let (next, values) = ranged(&e, "member").unwrap();
        assert_eq!((next, values.len()), (Some(1500), 2));
        let last = entry(&[("member;range=1500-*", &["c"])]);
        assert_eq!(ranged(&last, "member").unwrap().0, None);
        assert!(ranged(&entry(&[("member", &["a"])]), "member").is_none());
    }
}
