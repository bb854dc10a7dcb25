//! The one sorted merge of desired against current memberships that gives an IdP's adds and removes.

use std::cmp::Ordering;
use std::sync::Arc;

use super::ranks::Ranks;
use super::resolve::CauseRank;
use super::{Change, Held};

/// One sorted merge of desired against current: (adds, removes).
///
/// Both sides are sorted as (packed key, small integer) pairs, so the sorts move 16-byte items
/// and compare integers only.
pub(super) fn diff(
    idp: usize,
    mut desired: Vec<(u64, CauseRank)>,
    causes: &[Arc<str>],
    held: &[Held],
    ranks: &Ranks,
) -> (Vec<Change>, Vec<Change>) {
    desired.sort_unstable_by(|a, b| {
        ranks.tick(1);
        a.cmp(b)
    });
    desired.dedup_by_key(|d| d.0);
    let mut current: Vec<(u64, u32)> = held
        .iter()
        .enumerate()
        .map(|(i, h)| (ranks.key(h.group, h.user), i as u32))
        .collect();
    current.sort_unstable_by(|a, b| {
        ranks.tick(1);
        a.0.cmp(&b.0)
    });
    let (mut adds, mut removes) = (Vec::new(), Vec::new());
    let (mut d, mut c) = (desired.iter().peekable(), current.iter().peekable());
    loop {
        ranks.tick(1);
        let order = match (d.peek(), c.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(want), Some(have)) => want.0.cmp(&have.0),
        };
        match order {
            Ordering::Less => {
                let &(key, cause) = d.next().expect("peeked");
                let (group, user) = ranks.unkey(key);
                adds.push(Change {
                    group,
                    user,
                    idp,
                    cause: causes[cause as usize].clone(),
                });
            }
            Ordering::Greater => {
                let held = &held[c.next().expect("peeked").1 as usize];
                removes.push(Change {
                    group: held.group,
                    user: held.user,
                    idp,
                    cause: held.cause.clone(),
                });
            }
            Ordering::Equal => {
                d.next();
                c.next();
            }
        }
    }
    (adds, removes)
}
