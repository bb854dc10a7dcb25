//! Turning a plan into the reconcile document of SPEC §3.

use super::apply::DroppedChange;
use super::world::World;
use crate::model::IdpName;
use crate::reconcile::Plan;
use crate::report::{ChangeDoc, DroppedDoc, FailedDoc, InactiveDoc, RefusedDoc, Report, Summary};
use crate::state::ChangeOp;

/// An inactive mapping as the document lists it.
pub(super) fn inactive_doc(m: &crate::reconcile::InactiveMapping) -> InactiveDoc {
    InactiveDoc {
        idp: m.idp.to_string(),
        idp_group: m.idp_group.clone(),
        group: m.group.clone(),
        stage: m.stage.to_string(),
        reason: m.reason.as_str().to_owned(),
    }
}

/// The reconcile document of a plan (after its apply, when it was applied): what changed, what was
/// refused, failed or dropped at commit.
pub(super) fn to_report(
    run_id: &str,
    dry_run: bool,
    plan: &Plan,
    world: &World,
    names: &[IdpName],
    dropped: &[DroppedChange],
) -> Report {
    use std::sync::Arc;
    // Each name becomes one shared string, however many changes mention it.
    let mut users: Vec<Option<Arc<str>>> = vec![None; world.universe.users.len()];
    let mut groups: Vec<Option<(Arc<str>, Arc<str>)>> = vec![None; world.universe.groups.len()];
    let idps: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.as_str())).collect();
    let mut doc = |c: &crate::reconcile::Change| {
        let (stage, group) = groups[c.group as usize]
            .get_or_insert_with(|| {
                let g = &world.universe.groups[c.group as usize];
                (Arc::from(g.stage.as_str()), Arc::from(g.name.as_str()))
            })
            .clone();
        let user = users[c.user as usize]
            .get_or_insert_with(|| Arc::from(world.universe.users[c.user as usize].as_str()))
            .clone();
        ChangeDoc {
            stage,
            group,
            user,
            idp: idps[c.idp].clone(),
            idp_group: Arc::clone(&c.cause),
        }
    };
    let adds: Vec<ChangeDoc> = plan.adds.iter().map(&mut doc).collect();
    let removes: Vec<ChangeDoc> = plan.removes.iter().map(&mut doc).collect();
    let dropped: Vec<DroppedDoc> = dropped
        .iter()
        .map(|d| DroppedDoc {
            sign: if d.op == ChangeOp::Add { '+' } else { '-' },
            change: doc(&d.change),
            reason: d.reason.describe().to_owned(),
        })
        .collect();
    Report {
        run_id: run_id.to_owned(),
        dry_run,
        summary: Summary {
            adds: adds.len() as u64,
            removes: removes.len() as u64,
            skipped_users: plan.skipped_users,
            dropped: dropped.len() as u64,
        },
        dropped,
        unresolved_users: Vec::new(),
        renamed_mappings: Vec::new(),
        store: None,
        adds,
        removes,
        refused: plan
            .refused
            .iter()
            .map(|r| RefusedDoc {
                idp: r.idp.to_string(),
                guard: r.guard.as_str().to_owned(),
                removals: r.removals,
                limit: r.limit,
                allow: r.allow.clone(),
                detail: r.detail.clone(),
            })
            .collect(),
        inactive_mappings: plan.inactive.iter().map(inactive_doc).collect(),
        failed_idps: plan
            .failed
            .iter()
            .map(|(idp, failure)| FailedDoc {
                idp: idp.to_string(),
                error: failure.message.clone(),
            })
            .collect(),
    }
}
