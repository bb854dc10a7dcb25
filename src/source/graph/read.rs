//! Graph pages: the group list, and each group's members page by page, a few groups at once.
//!
//! `@odata.nextLink` is followed exactly as given (an opaque URL). A member page holds mixed
//! directory objects: users count (disabled accounts are kept as disabled, so they are never
//! members); groups are skipped, since `transitiveMembers` already lists their users and
//! `members` (not nested) must not expand them; devices, contacts and service principals are
//! ignored.

use std::borrow::Cow;
use std::sync::Mutex;

use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::GraphSource;
use crate::source::SourceError;
use crate::source::collect::{Collected, PageUser, optional_cow, parse_page};

/// One page of the group list.
#[derive(Deserialize)]
struct GroupPage {
    value: Vec<GroupItem>,
    #[serde(rename = "@odata.nextLink", default)]
    next: Option<String>,
}

/// One page of a group's members, borrowed from the body.
#[derive(Deserialize, Debug, PartialEq)]
pub(super) struct MemberPage<'a> {
    #[serde(borrow)]
    pub(super) value: Vec<Member<'a>>,
    #[serde(
        rename = "@odata.nextLink",
        borrow,
        default,
        deserialize_with = "optional_cow"
    )]
    pub(super) next: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct GroupItem {
    id: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
}

/// A directory object on a member page; only the fields `$select` asked for.
#[derive(Deserialize, Debug, PartialEq)]
pub(super) struct Member<'a> {
    #[serde(
        rename = "@odata.type",
        borrow,
        default,
        deserialize_with = "optional_cow"
    )]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "optional_cow")]
    pub(super) mail: Option<Cow<'a, str>>,
    #[serde(
        rename = "userPrincipalName",
        borrow,
        default,
        deserialize_with = "optional_cow"
    )]
    pub(super) upn: Option<Cow<'a, str>>,
    #[serde(rename = "accountEnabled", default)]
    pub(super) enabled: Option<bool>,
}

impl<'a> Member<'a> {
    /// The member as a user, or `None` for any other kind of directory object.
    pub(super) fn user(&'a self, key_field: &str) -> Option<PageUser<'a>> {
        if self.kind.as_deref() != Some("#microsoft.graph.user") {
            return None;
        }
        let key = if key_field == "mail" {
            &self.mail
        } else {
            &self.upn
        };
        Some(PageUser {
            id: &self.id,
            key: key.as_deref(),
            // Limited-information members come back with nulls; only an explicit false disables.
            enabled: self.enabled != Some(false),
        })
    }
}

impl GraphSource {
    /// Every group the filter selects, as the collection the members are read into.
    pub(super) async fn list_groups(&self) -> Result<Collected, SourceError> {
        let mut url = self.v1("/groups")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("$select", "id,displayName");
            query.append_pair("$top", "999");
            if let Some(filter) = &self.config.group_filter {
                query.append_pair("$filter", filter);
            }
            if self.config.advanced_query {
                query.append_pair("$count", "true");
            }
        }
        let mut collected = Collected::default();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.get(url).await?;
            let page: GroupPage = parse_page(&response.body, &response.what)?;
            for group in page.value {
                let name = group.display_name.unwrap_or_else(|| group.id.clone());
                collected.add_group(group.id, name);
            }
            next = page
                .next
                .as_deref()
                .map(|n| self.next_link(n))
                .transpose()?;
        }
        Ok(collected)
    }

    /// The first page of a group's members: `$select` of only the fields used, `$top=999`.
    pub(super) fn members_path(&self, group_id: &str) -> String {
        let relation = if self.nested {
            "transitiveMembers"
        } else {
            "members"
        };
        let select = format!("id,accountEnabled,{}", self.key_field);
        format!(
            "/groups/{}/{relation}?$select={select}&$top=999",
            urlencode(group_id)
        )
    }

    /// Each listed group's index with the path of its first member page.
    pub(super) fn first_pages(&self, collected: &Collected) -> Vec<(usize, String)> {
        collected
            .groups()
            .enumerate()
            .map(|(i, (id, _))| (i, self.members_path(id)))
            .collect()
    }

    /// Follows a `@odata.nextLink` as given.
    pub(super) fn next_link(&self, link: &str) -> Result<reqwest::Url, SourceError> {
        reqwest::Url::parse(link).map_err(|e| {
            SourceError::Invalid(format!(
                "Graph sent an @odata.nextLink that is not a URL ({link}): {e}"
            ))
        })
    }

    /// Reads the pages of one group's members starting at `url` into `collected`.
    pub(super) async fn read_group(
        &self,
        group: usize,
        mut url: reqwest::Url,
        collected: &Mutex<Collected>,
    ) -> Result<(), SourceError> {
        loop {
            let response = self.get(url).await?;
            let next = self.add_page(group, &response.body, &response.what, collected)?;
            match next {
                Some(next) => url = next,
                None => return Ok(()),
            }
        }
    }

    /// Parses one member page (the plain fast path, else serde_json) into `collected` and returns the next page's URL.
    pub(super) fn add_page(
        &self,
        group: usize,
        body: &[u8],
        what: &str,
        collected: &Mutex<Collected>,
    ) -> Result<Option<reqwest::Url>, SourceError> {
        let plain = simdutf8::basic::from_utf8(body)
            .ok()
            .and_then(super::scan::member_page);
        let page = match plain {
            Some(page) => page,
            None => parse_page(body, what)?,
        };
        let users = page.value.iter().filter_map(|m| m.user(self.key_field));
        collected
            .lock()
            .expect("no panics under this lock")
            .add_members(group, users);
        page.next.as_deref().map(|n| self.next_link(n)).transpose()
    }
}

/// Reads the members of every listed group, `max_concurrency` groups at a time; the first
/// failure stops the read.
pub(super) async fn read_members(
    source: &GraphSource,
    collected: &mut Collected,
) -> Result<(), SourceError> {
    let firsts = source.first_pages(collected);
    let root = source.v1("")?;
    let shared = Mutex::new(std::mem::take(collected));
    futures_util::stream::iter(firsts)
        .map(|(group, path)| {
            let (shared, url) = (&shared, super::under(&root, &path));
            source.read_group(group, url, shared)
        })
        .buffer_unordered(source.config.http.max_concurrency)
        .try_collect::<()>()
        .await?;
    *collected = shared.into_inner().expect("no panics under this lock");
    Ok(())
}

/// Percent-encodes a path segment.
fn urlencode(segment: &str) -> String {
    crate::source::encode_segment(segment)
}
