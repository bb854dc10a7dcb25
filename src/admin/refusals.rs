//! Pending refusals (an IdP's run the guards refused, SPEC §2) and the run that approves one: the
//! same reconcile, of that IdP only, with exactly what its `allow` command names.

use serde::Serialize;

use crate::config::Config;
use crate::model::IdpName;
use crate::state::{State, StateError};
use crate::sync::RunOptions;

/// One IdP's unresolved refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefusalDoc {
    /// The IdP refused.
    pub idp: String,
    /// The run that was refused.
    pub run_id: String,
    /// `empty` or `removals`.
    pub guard: String,
    /// Why, in words.
    pub detail: String,
    /// The command that lets it through (the console's approve button runs the same).
    pub allow: String,
}

/// The unresolved refusal of every configured IdP that has one.
pub fn refusal_docs(config: &Config, state: &State) -> Result<Vec<RefusalDoc>, StateError> {
    let mut docs = Vec::new();
    for idp in &config.idps {
        if let Some(r) = state.pending_refusal(&idp.name)? {
            docs.push(RefusalDoc {
                idp: idp.name.to_string(),
                run_id: r.run_id,
                guard: r.guard,
                detail: r.detail,
                allow: r.allow,
            });
        }
    }
    Ok(docs)
}

/// The run options that approve `refusal`: its IdP only, with `--allow-empty` and
/// `--allow-removals N` as its `allow` command names them after `--idp` (what comes before, the
/// configuration's path among it, is not read), so a read that now removes more than was approved
/// is refused again.
pub fn approval_of(refusal: &RefusalDoc) -> RunOptions {
    let mut options = RunOptions {
        idps: IdpName::parse(&refusal.idp).into_iter().collect(),
        ..RunOptions::default()
    };
    let flags = refusal
        .allow
        .rsplit_once(" --idp ")
        .map_or("", |(_, flags)| flags);
    let mut words = flags.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "--allow-empty" => options.allow_empty = true,
            "--allow-removals" => {
                options.allow_removals = words.next().and_then(|n| n.parse().ok())
            }
            _ => {}
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_allows_exactly_what_the_refusal_names() {
        let refusal = RefusalDoc {
            idp: "corp".into(),
            run_id: "r".into(),
            guard: "empty".into(),
            detail: "d".into(),
            allow: "idpsync --config '/etc/idp sync.toml' reconcile --idp corp --allow-empty --allow-removals 12".into(),
        };
        let options = approval_of(&refusal);
        assert_eq!(options.idps, vec![IdpName::parse("corp").unwrap()]);
        assert!(options.allow_empty);
        assert_eq!(options.allow_removals, Some(12));
        // A configuration path that reads like a flag is not one.
        let tricky = RefusalDoc {
            allow: "idpsync --config '/etc/ --allow-empty /x.toml' reconcile --idp corp --allow-removals 3".into(),
            ..refusal.clone()
        };
        assert!(!approval_of(&tricky).allow_empty);
        let removals_only = RefusalDoc {
            allow: "idpsync reconcile --idp corp --allow-removals 3".into(),
            ..refusal
        };
        let options = approval_of(&removals_only);
        assert!(!options.allow_empty);
        assert_eq!(options.allow_removals, Some(3));
    }
}
