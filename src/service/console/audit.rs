//! The audit log, newest first, filtered by user, group and date.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};

use super::layout::{self, Nav, described_by, field_error};
use super::session::Session;
use super::{Console, Failure};
use crate::model::{Stage, UserKey, normalise_group_name};
use crate::state::AuditFilter;

/// At most this many records are shown, the newest.
const SHOWN: usize = 200;

/// The filters of the page, as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    group: String,
    /// `YYYY-MM-DD`, UTC.
    #[serde(default)]
    since: String,
}

/// Which filter was refused, and why.
#[derive(Debug, Default)]
struct Refused {
    user: Option<String>,
    group: Option<String>,
    since: Option<String>,
}

fn filter_of(query: &AuditQuery) -> (AuditFilter, Refused) {
    let mut filter = AuditFilter::default();
    let mut refused = Refused::default();
    if !query.user.trim().is_empty() {
        match UserKey::parse(&query.user) {
            Ok(key) => filter.user = Some(key),
            Err(e) => refused.user = Some(e.to_string()),
        }
    }
    if !query.group.trim().is_empty() {
        match Stage::parse(query.stage.trim()) {
            Ok(stage) => filter.group = Some((stage, normalise_group_name(&query.group))),
            Err(_) => refused.group = Some("Choose the group's stage as well.".to_owned()),
        }
    }
    if !query.since.trim().is_empty() {
        match chrono::NaiveDate::parse_from_str(query.since.trim(), "%Y-%m-%d") {
            Ok(day) => {
                let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
                filter.since = Some(midnight.and_utc().timestamp());
            }
            Err(_) => refused.since = Some("Write the date as YYYY-MM-DD.".to_owned()),
        }
    }
    (filter, refused)
}

/// `GET /audit?user=&stage=&group=&since=`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(query): Query<AuditQuery>,
) -> Result<Markup, Failure> {
    let config = console.config();
    let (filter, refused) = filter_of(&query);
    let (records, more) = console
        .read(move |_, state| state.audit_latest(&filter, SHOWN as u32))
        .await?;
    let total = records.len();
    let (user_error, group_error, since_error) = (
        refused.user.as_deref(),
        refused.group.as_deref(),
        refused.since.as_deref(),
    );
    let body = html! {
        h1 { "Audit" }
        form.card method="get" action="/audit" {
            div.inline {
                div {
                    label for="user" { "User" }
                    input #user type="text" name="user" value=(query.user)
                        aria-invalid=[user_error.map(|_| "true")]
                        aria-describedby=[described_by("user", user_error)];
                    (field_error("user", user_error))
                }
                div {
                    label for="stage" { "Stage" }
                    select #stage name="stage" {
                        option value="" { "Any" }
                        @for s in &config.daemon.stages {
                            option value=(s) selected[query.stage == s.as_str()] { (s) }
                        }
                    }
                }
                div {
                    label for="group" { "Group" }
                    input #group type="text" name="group" value=(query.group)
                        aria-invalid=[group_error.map(|_| "true")]
                        aria-describedby=[described_by("group", group_error)];
                    (field_error("group", group_error))
                }
                div {
                    label for="since" { "Since (UTC)" }
                    input #since type="date" name="since" value=(query.since)
                        aria-invalid=[since_error.map(|_| "true")]
                        aria-describedby=[described_by("since", since_error)];
                    (field_error("since", since_error))
                }
                button type="submit" { "Filter" }
            }
        }
        @if total == 0 {
            p.muted { "No audit record matches." }
        } @else {
            p.muted {
                @if more { "The newest " (SHOWN) " records; narrow the filters to see older ones." }
                @else { (total) " records, newest first." }
            }
            div.table-wrap {
                table #audit {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Operation" }
                        th scope="col" { "Group" } th scope="col" { "User" }
                        th.hide-narrow scope="col" { "Detail" }
                    } }
                    tbody {
                        @for r in &records {
                            tr {
                                td { (r.time) } td { (r.actor) } td { code { (r.op) } }
                                td {
                                    @if let (Some(stage), Some(group)) = (&r.stage, &r.group) {
                                        (group) span.muted { " in " (stage) }
                                    }
                                }
                                td { (r.user.as_deref().unwrap_or("")) }
                                td.hide-narrow {
                                    @if let Some(p) = &r.provenance { (layout::provenance_badge(p)) " " }
                                    (r.cause.as_deref().unwrap_or(""))
                                    @if let Some(d) = &r.detail { " " span.muted { (d) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Audit", Nav::Audit, &session, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_and_bad_ones_named() {
        let query = AuditQuery {
            user: " Ana@Example.com ".into(),
            stage: "qa".into(),
            group: "Testers".into(),
            since: "2024-02-01".into(),
        };
        let (filter, refused) = filter_of(&query);
        assert_eq!(filter.user.unwrap().as_str(), "ana@example.com");
        assert_eq!(filter.group.unwrap().1, "testers");
        assert_eq!(filter.since, Some(1_706_745_600));
        assert!(refused.user.is_none() && refused.group.is_none() && refused.since.is_none());
        let bad = AuditQuery {
            group: "Testers".into(),
            since: "01/02/2024".into(),
            ..AuditQuery::default()
        };
        let (filter, refused) = filter_of(&bad);
        assert!(filter.group.is_none() && filter.since.is_none());
        assert!(refused.group.is_some() && refused.since.is_some());
    }
}
