//! The cheap unchanged check: a value the server moves on every write.
//!
//! OpenLDAP keeps `contextCSN` on the naming context's entry (with the syncprov overlay, or
//! written by `slapadd -w`); Active Directory publishes `highestCommittedUSN` in the rootDSE, per
//! domain controller (`dsServiceName` names it, so a different DC never looks unchanged). A server
//! that publishes neither is always read in full.

use crate::dn;

use super::conn::Session;
use super::search;

/// The change marker of the directory holding `base_dn`, or `None` when the server has none.
///
/// Read before the full read, so a change made during the read moves the marker past the value
/// stored with it and the next run reads again.
pub async fn read(session: &mut Session<'_>) -> Option<String> {
    let marker = if session.config.active_directory {
        usn(session).await
    } else {
        csn(session).await
    };
    if marker.is_none() {
        tracing::debug!(url = %session.config.url, "No change marker (contextCSN / highestCommittedUSN); every run reads in full.");
    }
    marker
}

async fn usn(session: &mut Session<'_>) -> Option<String> {
    let root = search::base(session, "", &["highestCommittedUSN", "dsServiceName"])
        .await
        .ok()??;
    let usn = search::first(&root, "highestCommittedUSN")?;
    let server = search::first(&root, "dsServiceName").unwrap_or("");
    Some(format!("usn:{server}:{usn}"))
}

async fn csn(session: &mut Session<'_>) -> Option<String> {
    let root = search::base(session, "", &["namingContexts"])
        .await
        .ok()??;
    let base = dn::normalise(&session.config.base_dn)?;
    let context = search::values(&root, "namingContexts")
        .iter()
        .filter(|nc| dn::normalise(nc).is_some_and(|n| dn::is_within(&base, &n)))
        .max_by_key(|nc| nc.len())?
        .clone();
    let entry = search::base(session, &context, &["contextCSN"])
        .await
        .ok()??;
    let mut csns: Vec<&String> = search::values(&entry, "contextCSN").iter().collect();
    if csns.is_empty() {
        return None;
    }
    csns.sort();
    let joined: Vec<&str> = csns.iter().map(|s| s.as_str()).collect();
    Some(format!(
        "csn:{}:{}",
        dn::normalise(&context).unwrap_or(context),
        joined.join(";")
    ))
}
