//! What a verified token says about its user: the user key, and the groups claim — listed, or
//! marked as an Entra overage to resolve through Graph (reference/idp-apis.md §1.8).
//!
//! A missing groups claim without an overage marker is [`ClaimsError::GroupsMissing`]
//! (422 `groups_claim_missing`), never "no groups": an IdP that stopped sending the claim must
//! not strip everyone's access one login at a time.

use serde_json::{Map, Value};

use super::verify::Verified;
use crate::config::OidcConfig;

/// The groups a token gives its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Groups {
    /// Group ids or names, as the claim lists them (empty entries dropped).
    Listed(Vec<String>),
    /// Too many groups for the token (`_claim_names`/`_claim_sources`, or `hasgroups`): they
    /// are to be looked up through Graph for the user `oid` of the tenant `tid`.
    Overage {
        /// `oid`: the user's object id.
        object_id: Option<String>,
        /// `tid`: the tenant.
        tenant_id: Option<String>,
    },
}

/// A login's claims, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginClaims {
    /// The user claim's value (the raw user key).
    pub user: String,
    /// `sub`: the subject the per-subject rate limit counts.
    pub subject: String,
    /// `iat` in seconds: a token older than the last applied one changes nothing.
    pub issued_at: i64,
    /// The groups.
    pub groups: Groups,
}

/// Why the claims cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// The token lacks a usable user claim, or says its e-mail is unverified (401).
    #[error("{0}")]
    Invalid(String),
    /// No groups claim and no overage marker (422).
    #[error("the token has no {0:?} claim and no overage marker")]
    GroupsMissing(String),
}

/// Reads `verified` as `config` says.
pub fn read(verified: &Verified, config: &OidcConfig) -> Result<LoginClaims, ClaimsError> {
    let claims = &verified.claims;
    let user = match claims.get(&config.user_claim) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            return Err(ClaimsError::Invalid(format!(
                "the token has no {:?} claim (user_claim) with a value",
                config.user_claim
            )));
        }
    };
    if user.contains('@') && claims.get("email_verified") == Some(&Value::Bool(false)) {
        return Err(ClaimsError::Invalid(
            "the token's e-mail is not verified (email_verified is false)".to_owned(),
        ));
    }
    Ok(LoginClaims {
        user,
        subject: verified.subject.clone(),
        issued_at: verified.issued_at.timestamp(),
        groups: groups(claims, config)?,
    })
}

fn groups(claims: &Map<String, Value>, config: &OidcConfig) -> Result<Groups, ClaimsError> {
    let name = &config.groups_claim;
    let listed = |items: Vec<&str>| {
        Groups::Listed(
            items
                .into_iter()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    };
    match claims.get(name) {
        Some(Value::Array(items)) => {
            let items: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            items.map(listed).ok_or_else(|| {
                ClaimsError::Invalid(format!("the {name:?} claim lists something not a string"))
            })
        }
        Some(Value::String(one)) => Ok(match &config.claim_delimiter {
            Some(delimiter) => listed(one.split(delimiter.as_str()).collect()),
            None => listed(vec![one]),
        }),
        Some(Value::Null) | None if overage(claims, name) => Ok(Groups::Overage {
            object_id: text(claims, "oid"),
            tenant_id: text(claims, "tid"),
        }),
        Some(Value::Null) | None => Err(ClaimsError::GroupsMissing(name.clone())),
        Some(_) => Err(ClaimsError::Invalid(format!(
            "the {name:?} claim is neither a list nor a string"
        ))),
    }
}

/// Entra's markers: `_claim_names` naming the groups claim, or `hasgroups: true`.
fn overage(claims: &Map<String, Value>, name: &str) -> bool {
    let named = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(name) || names.contains_key("groups"));
    named || claims.get("hasgroups") == Some(&Value::Bool(true))
}

fn text(claims: &Map<String, Value>, key: &str) -> Option<String> {
    claims.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn config(delimiter: Option<&str>) -> OidcConfig {
        OidcConfig {
            issuer: "https://issuer.example".into(),
            client_id: "app".into(),
            groups_claim: "groups".into(),
            claim_delimiter: delimiter.map(str::to_owned),
            user_claim: "email".into(),
            max_token_age: Duration::from_secs(600),
            auto_create: true,
        }
    }

    fn verified(claims: Value) -> Verified {
        Verified {
            subject: "s-1".into(),
            issued_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            claims: claims.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn groups_come_as_a_list_or_a_delimited_string() {
        let listed = read(
            &verified(json!({"email": "ann@example.com", "groups": ["a", " b ", ""]})),
            &config(None),
        )
        .unwrap();
        assert_eq!(listed.groups, Groups::Listed(vec!["a".into(), "b".into()]));
        assert_eq!(
            (listed.user.as_str(), listed.issued_at),
            ("ann@example.com", 1_800_000_000)
        );
        let split = read(
            &verified(json!({"email": "ann@example.com", "groups": "a;b;;c"})),
            &config(Some(";")),
        )
        .unwrap();
        assert_eq!(
            split.groups,
            Groups::Listed(vec!["a".into(), "b".into(), "c".into()])
        );
        let whole = read(
            &verified(json!({"email": "ann@example.com", "groups": "a;b"})),
            &config(None),
        )
        .unwrap();
        assert_eq!(whole.groups, Groups::Listed(vec!["a;b".into()]));
        let none = read(
            &verified(json!({"email": "ann@example.com", "groups": []})),
            &config(None),
        )
        .unwrap();
        assert_eq!(none.groups, Groups::Listed(vec![]));
    }

    #[test]
    fn a_missing_claim_is_never_no_groups() {
        for claims in [
            json!({"email": "ann@example.com"}),
            json!({"email": "ann@example.com", "groups": null}),
        ] {
            assert_eq!(
                read(&verified(claims), &config(None)),
                Err(ClaimsError::GroupsMissing("groups".into()))
            );
        }
    }

    #[test]
    fn overage_markers_ask_for_a_lookup() {
        let marked = json!({"email": "ann@example.com", "oid": "o-1", "tid": "t-1",
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/t-1/users/o-1/getMemberObjects"}}});
        let hasgroups = json!({"email": "ann@example.com", "oid": "o-1", "hasgroups": true});
        for (claims, tenant) in [(marked, Some("t-1".to_owned())), (hasgroups, None)] {
            assert_eq!(
                read(&verified(claims), &config(None)).unwrap().groups,
                Groups::Overage {
                    object_id: Some("o-1".into()),
                    tenant_id: tenant
                }
            );
        }
    }

    #[test]
    fn an_unverified_email_or_no_user_is_refused() {
        let unverified = json!({"email": "ann@example.com", "email_verified": false, "groups": []});
        assert!(matches!(
            read(&verified(unverified), &config(None)),
            Err(ClaimsError::Invalid(m)) if m.contains("email_verified")
        ));
        let nobody = json!({"groups": []});
        assert!(matches!(
            read(&verified(nobody), &config(None)),
            Err(ClaimsError::Invalid(_))
        ));
        let odd = json!({"email": "ann@example.com", "groups": [1, 2]});
        assert!(matches!(
            read(&verified(odd), &config(None)),
            Err(ClaimsError::Invalid(_))
        ));
    }
}
