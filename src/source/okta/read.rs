//! Okta pages: the group list, then each group's users, a few groups at once, every page
//! followed through its `Link: rel="next"` exactly as given.

use std::borrow::Cow;
use std::sync::Mutex;

use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::{OktaSource, link};
use crate::source::SourceError;
use crate::source::collect::{Collected, PageUser, optional_cow, parse_page};

#[derive(Deserialize)]
struct GroupItem {
    id: String,
    profile: GroupProfile,
}

#[derive(Deserialize)]
struct GroupProfile {
    name: String,
}

#[derive(Deserialize)]
struct UserItem<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    profile: Option<UserProfile<'a>>,
}

#[derive(Deserialize)]
struct UserProfile<'a> {
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    login: Option<Cow<'a, str>>,
}

/// SPEC §1: `SUSPENDED` and `DEPROVISIONED` are disabled; every other status is enabled.
fn enabled(status: Option<&str>) -> bool {
    !matches!(status, Some("SUSPENDED" | "DEPROVISIONED"))
}

impl OktaSource {
    /// Every group the filter selects.
    pub(super) async fn list_groups(&self) -> Result<Collected, SourceError> {
        let mut url = self.api("/api/v1/groups")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", "200");
            if let Some(filter) = &self.config.group_filter {
                query.append_pair("filter", filter);
            }
            if let Some(search) = &self.config.group_search {
                query.append_pair("search", search);
            }
        }
        let mut collected = Collected::default();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.get(url).await?;
            let page: Vec<GroupItem> = parse_page(&response.body, &response.what)?;
            for group in page {
                collected.add_group(group.id, group.profile.name);
            }
            next = self.next_page(&response.headers)?;
        }
        Ok(collected)
    }

    fn next_page(
        &self,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<Option<reqwest::Url>, SourceError> {
        link::next(headers)
            .map(|n| {
                reqwest::Url::parse(&n).map_err(|e| {
                    SourceError::Invalid(format!(
                        "Okta sent a next link that is not a URL ({n}): {e}"
                    ))
                })
            })
            .transpose()
    }

    /// Reads every page of one group's users into `collected`.
    async fn read_group(
        &self,
        group: usize,
        group_id: String,
        collected: &Mutex<Collected>,
    ) -> Result<(), SourceError> {
        let mut url = self.api(&format!("/api/v1/groups/{}/users", encode(&group_id)))?;
        url.query_pairs_mut()
            .append_pair("limit", &self.config.page_size.to_string());
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.get(url).await?;
            let page: Vec<UserItem> = parse_page(&response.body, &response.what)?;
            let users = page.iter().map(|u| PageUser {
                id: &u.id,
                key: u
                    .profile
                    .as_ref()
                    .and_then(|p| if self.by_login { &p.login } else { &p.email }.as_deref()),
                enabled: enabled(u.status.as_deref()),
            });
            collected
                .lock()
                .expect("no panics under this lock")
                .add_members(group, users);
            next = self.next_page(&response.headers)?;
        }
        Ok(())
    }
}

/// Reads the users of every listed group, `max_concurrency` groups at a time; the first failure
/// stops the read.
pub(super) async fn read_members(
    source: &OktaSource,
    collected: &mut Collected,
) -> Result<(), SourceError> {
    let groups: Vec<(usize, String)> = collected
        .groups()
        .enumerate()
        .map(|(i, (id, _))| (i, id.to_owned()))
        .collect();
    let shared = Mutex::new(std::mem::take(collected));
    futures_util::stream::iter(groups)
        .map(|(group, id)| source.read_group(group, id, &shared))
        .buffer_unordered(source.config.http.max_concurrency)
        .try_collect::<()>()
        .await?;
    *collected = shared.into_inner().expect("no panics under this lock");
    Ok(())
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    crate::source::encode_segment(segment)
}

#[cfg(test)]
mod tests {
    use super::enabled;

    #[test]
    fn only_suspended_and_deprovisioned_are_disabled() {
        for status in [
            "ACTIVE",
            "STAGED",
            "PROVISIONED",
            "RECOVERY",
            "LOCKED_OUT",
            "PASSWORD_EXPIRED",
        ] {
            assert!(enabled(Some(status)), "{status}");
        }
        assert!(!enabled(Some("SUSPENDED")));
        assert!(!enabled(Some("DEPROVISIONED")));
        assert!(enabled(None));
    }
}
