//! The reconcile document of SPEC §3, as JSON and as text for people.
//!
//! The JSON has exactly the fields SPEC lists; the text form says the same things in lines an
//! administrator can read, with each refusal's reason and the command that allows it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::RunOutcome;

/// The result of one reconcile, printed on standard output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The run's id (also the audit actor `run:<id>`).
    pub run_id: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Adds applied (or that would be, in a dry run).
    pub adds: Vec<ChangeDoc>,
    /// Removes applied (or that would be).
    pub removes: Vec<ChangeDoc>,
    /// IdPs whose changes were withheld.
    pub refused: Vec<RefusedDoc>,
    /// Mappings that did nothing, with their reason code.
    pub inactive_mappings: Vec<InactiveDoc>,
    /// IdPs that could not be read or applied.
    pub failed_idps: Vec<FailedDoc>,
    /// Adds for users a remote store does not know, retried at every run. The embedded store
    /// knows every user, so with it this is always empty.
    #[serde(default)]
    pub unresolved_users: Vec<UnresolvedDoc>,
    /// Counts.
    pub summary: Summary,
    /// Changes dropped at commit (their group was deleted, or their stage is no longer served
    /// since the plan was made): counted in the summary, listed in the text only.
    #[serde(skip)]
    pub dropped: Vec<DroppedDoc>,
    /// Mappings that name a former name of a renamed group (text only; a warning).
    #[serde(skip)]
    pub renamed_mappings: Vec<crate::mappings::RenamedMapping>,
    /// What the remote store was sent (text only; `None` with the embedded store).
    #[serde(skip)]
    pub store: Option<StoreDoc>,
}

/// What a run sent its remote store, for the text output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreDoc {
    /// The store's kind.
    pub kind: String,
    /// Changes the store accepted.
    pub pushed: u64,
    /// Requests sent to it.
    pub requests: u64,
    /// Journal entries it rejected for good in this run (`journal list`).
    pub failed: u64,
    /// Memberships found drifted and corrected.
    pub drift: u64,
    /// Why sending stopped, when it did: the entries wait in the journal (exit 1).
    pub error: Option<String>,
}

/// A change a remote store could not place: the user is not known there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedDoc {
    /// The store.
    pub store: String,
    /// The group's stage.
    pub stage: String,
    /// The group.
    pub group: String,
    /// The user key.
    pub user: String,
}

/// A change dropped at commit, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedDoc {
    /// `+` for an add, `-` for a remove.
    pub sign: char,
    /// The change.
    pub change: ChangeDoc,
    /// Why, in words.
    pub reason: String,
}

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
///
/// Fields are shared strings: a million changes name a few thousand groups and IdP groups.
pub struct ChangeDoc {
    /// The group's stage.
    pub stage: Arc<str>,
    /// The group's name.
    pub group: Arc<str>,
    /// The user key.
    pub user: Arc<str>,
    /// The IdP whose provenance changes.
    pub idp: Arc<str>,
    /// The IdP group that causes it.
    pub idp_group: Arc<str>,
}

/// One refused IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDoc {
    /// The IdP.
    pub idp: String,
    /// `empty` or `removals`.
    pub guard: String,
    /// The removals its plan holds.
    pub removals: u64,
    /// What the guard allows.
    pub limit: u64,
    /// The command that lets it through.
    pub allow: String,
    /// Why (text output only).
    #[serde(skip, default)]
    pub detail: String,
}

/// One inactive mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InactiveDoc {
    /// The mapping's IdP.
    pub idp: String,
    /// The mapping's IdP group value.
    pub idp_group: String,
    /// The mapping's group.
    pub group: String,
    /// The mapping's stage.
    pub stage: String,
    /// The reason code.
    pub reason: String,
}

/// One failed IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedDoc {
    /// The IdP.
    pub idp: String,
    /// What went wrong.
    pub error: String,
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Adds listed.
    pub adds: u64,
    /// Removes listed.
    pub removes: u64,
    /// Users skipped for lack of a usable key.
    pub skipped_users: u64,
    /// Changes dropped at commit (SPEC §1 invariant 10).
    #[serde(default)]
    pub dropped: u64,
}

impl Report {
    /// SPEC §3's exit status: 3 if anything was refused, else 1 if anything failed, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.refused.is_empty() {
            3
        } else if !self.failed_idps.is_empty()
            || self.store.as_ref().is_some_and(|s| s.error.is_some())
        {
            1
        } else {
            0
        }
    }

    /// The outcome of the run this document reports, by SPEC §3's precedence.
    pub fn outcome(&self) -> RunOutcome {
        match self.exit_code() {
            3 => RunOutcome::Refused,
            1 => RunOutcome::Failed,
            _ => RunOutcome::Applied,
        }
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }

    /// Writes the document as pretty JSON, streaming (a million changes never sit in one string).
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        serde_json::to_writer_pretty(&mut out, self)?;
        std::io::Write::write_all(&mut out, b"\n")?;
        std::io::Write::flush(&mut out)
    }

    /// Writes the document as text, streaming.
    pub fn write_text(&self, out: impl std::io::Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        self.render_text(&mut out)?;
        std::io::Write::flush(&mut out)
    }

    /// Writes the document as text for people.
    pub fn render_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let what = if self.dry_run { "Dry run" } else { "Run" };
        writeln!(out, "{what} {}", self.run_id)?;
        let verb = if self.dry_run { "would " } else { "" };
        if self.adds.is_empty() && self.removes.is_empty() {
            writeln!(out, "No membership changes.")?;
        }
        for (sign, list) in [("+", &self.adds), ("-", &self.removes)] {
            for c in list {
                writeln!(
                    out,
                    "  {sign} {}/{}  {}  (idp:{} via {:?})",
                    c.stage, c.group, c.user, c.idp, c.idp_group
                )?;
            }
        }
        if !self.dropped.is_empty() {
            writeln!(out, "Dropped at commit (never written):")?;
            for d in &self.dropped {
                let c = &d.change;
                writeln!(
                    out,
                    "  {} {}/{}  {}  (idp:{} via {:?}): {}",
                    d.sign, c.stage, c.group, c.user, c.idp, c.idp_group, d.reason
                )?;
            }
        }
        for r in &self.refused {
            writeln!(
                out,
                "REFUSED idp {}: {} guard — {} (removals {}, limit {}); its changes are withheld.\n  To allow: {}",
                r.idp, r.guard, r.detail, r.removals, r.limit, r.allow
            )?;
        }
        for f in &self.failed_idps {
            writeln!(out, "FAILED idp {}: {}", f.idp, f.error)?;
        }
        if let Some(store) = &self.store {
            writeln!(
                out,
                "Store {}: {} changes sent in {} requests, {} rejected (see `idpsync journal list`), {} drifted memberships corrected.",
                store.kind, store.pushed, store.requests, store.failed, store.drift
            )?;
            if let Some(error) = &store.error {
                writeln!(
                    out,
                    "FAILED store {}: {error}; the changes wait in the journal for the next run.",
                    store.kind
                )?;
            }
        }
        if !self.unresolved_users.is_empty() {
            writeln!(
                out,
                "Users the store does not know (skipped; asked again at every run):"
            )?;
            for u in &self.unresolved_users {
                writeln!(out, "  {} {}/{}  {}", u.store, u.stage, u.group, u.user)?;
            }
        }
        if !self.inactive_mappings.is_empty() {
            writeln!(out, "Inactive mappings:")?;
            for m in &self.inactive_mappings {
                writeln!(
                    out,
                    "  {} {:?} -> {}/{}: {}",
                    m.idp, m.idp_group, m.stage, m.group, m.reason
                )?;
            }
        }
        if !self.renamed_mappings.is_empty() {
            writeln!(
                out,
                "Mappings that name a former group name (they follow the group; update the configuration):"
            )?;
            for m in &self.renamed_mappings {
                writeln!(
                    out,
                    "  {} {:?} -> {}/{}: the group is now {:?}",
                    m.idp, m.idp_group, m.stage, m.group, m.now
                )?;
            }
        }
        let dropped = if self.summary.dropped > 0 {
            format!("{} dropped at commit, ", self.summary.dropped)
        } else {
            String::new()
        };
        writeln!(
            out,
            "Summary: {verb}add {}, {verb}remove {}, {dropped}{} users skipped (no user key), {} refused, {} failed.",
            self.summary.adds,
            self.summary.removes,
            self.summary.skipped_users,
            self.refused.len(),
            self.failed_idps.len()
        )?;
        Ok(())
    }

    /// The document as text for people.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        self.render_text(&mut out).expect("writing to memory");
        String::from_utf8(out).expect("the report is UTF-8")
    }
}
