//! The reconcile document (a run's, or the dry-run plan of the preview) as a page section: the
//! counts, refused IdPs with what would allow them, failed IdPs, and the changes themselves.

use maud::{Markup, html};

use crate::report::{ChangeDoc, Report};

/// At most this many adds (and as many removes) are listed; the counts cover them all.
const LISTED: usize = 200;

/// `report` as a section; `planned` words it as what a run would do.
pub(super) fn report(report: &Report, planned: bool) -> Markup {
    let (adds, removes) = if planned {
        ("Adds a run would make", "Removes a run would make")
    } else {
        ("Adds", "Removes")
    };
    html! {
        section.card #report {
            dl.facts {
                dt { (adds) } dd #adds-count { (report.summary.adds) }
                dt { (removes) } dd #removes-count { (report.summary.removes) }
                dt { "Users skipped (no key)" } dd { (report.summary.skipped_users) }
                @if report.summary.dropped > 0 {
                    dt { "Changes dropped at commit" } dd { (report.summary.dropped) }
                }
                @if !report.inactive_mappings.is_empty() {
                    dt { "Inactive mappings" }
                    dd { (report.inactive_mappings.len()) " — see " a href="/mappings" { "Mappings" } }
                }
            }
        }
        @if !report.refused.is_empty() {
            h2 { "Refused" }
            div.table-wrap {
                table #refused {
                    thead { tr {
                        th scope="col" { "IdP" } th scope="col" { "Guard" }
                        th.num scope="col" { "Removals" } th.num scope="col" { "Limit" }
                        th scope="col" { "Allowed by" }
                    } }
                    tbody {
                        @for r in &report.refused {
                            tr {
                                td { (r.idp) } td { (r.guard) }
                                td.num { (r.removals) } td.num { (r.limit) }
                                td { code { (r.allow) } }
                            }
                        }
                    }
                }
            }
            @if !planned { p { a href="/refusals" { "Review and approve refusals" } } }
        }
        @if !report.failed_idps.is_empty() {
            h2 { "Failed IdPs" }
            ul { @for f in &report.failed_idps { li { strong { (f.idp) } ": " (f.error) } } }
        }
        (changes(adds, "adds", &report.adds))
        (changes(removes, "removes", &report.removes))
    }
}

fn changes(title: &str, id: &str, list: &[ChangeDoc]) -> Markup {
    html! {
        @if !list.is_empty() {
            h2 { (title) }
            @if list.len() > LISTED {
                p.muted { "The first " (LISTED) " of " (list.len()) "." }
            }
            div.table-wrap {
                table id=(id) {
                    thead { tr {
                        th scope="col" { "Stage" } th scope="col" { "Group" } th scope="col" { "User" }
                        th scope="col" { "IdP" } th.hide-narrow scope="col" { "IdP group" }
                    } }
                    tbody {
                        @for c in list.iter().take(LISTED) {
                            tr {
                                td { (c.stage.as_ref()) } td { (c.group.as_ref()) } td { (c.user.as_ref()) }
                                td { (c.idp.as_ref()) } td.hide-narrow { (c.idp_group.as_ref()) }
                            }
                        }
                    }
                }
            }
        }
    }
}
