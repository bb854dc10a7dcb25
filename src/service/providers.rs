//! The OpenID providers logins are checked against, for one configuration: a verifier per
//! `[idp.oidc]` and a Graph client per IdP that can resolve an Entra groups overage.
//!
//! A reload that changes any of them (an `[idp.oidc]`, the IdP's HTTP settings or its overage
//! credentials) replaces them whole: the new verifiers load their discovery and JWKS, and the
//! old ones' key loaders stop once the last login using them has answered.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::client::HttpClient;
use crate::config::{Config, HttpConfig, IdpConfig, IdpKind, OidcConfig};
use crate::login::Verifier;
use crate::model::IdpName;
use crate::source::Source;
use crate::source::graph::GraphSource;

/// How often each provider's JWKS is fetched again.
pub const JWKS_REFRESH: Duration = Duration::from_secs(3600);
/// How long after a failed discovery it is tried again.
const LOAD_RETRY: Duration = Duration::from_secs(5);

/// The providers of one configuration.
pub(crate) struct Providers {
    /// What they were built from.
    built_from: Vec<Built>,
    verifiers: Vec<(IdpName, Arc<Verifier>)>,
    /// The Graph client of each IdP that resolves groups overages.
    graphs: Vec<(IdpName, Arc<GraphSource>)>,
    /// Dropped with these providers: their key loaders stop.
    _retired: watch::Sender<bool>,
    retired: watch::Receiver<bool>,
}

/// What one IdP's provider is built from; a reload that changes it builds them again.
#[derive(Debug, PartialEq)]
struct Built {
    idp: IdpName,
    oidc: OidcConfig,
    http: HttpConfig,
    /// Tenant, client and Graph URL of the credentials overages resolve with.
    overage: Option<(String, String, String)>,
}

impl Providers {
    /// A verifier for every IdP of `config` with `[idp.oidc]` (none loaded yet).
    pub(crate) fn new(config: &Config) -> anyhow::Result<Providers> {
        let (mut verifiers, mut graphs) = (Vec::new(), Vec::new());
        for idp in config.idps.iter().filter(|i| i.oidc.is_some()) {
            let oidc = idp.oidc.as_ref().expect("filtered");
            let failed = |e: String| anyhow::anyhow!("idp {}: {e}", idp.name);
            let http = HttpClient::new(&http_of(idp)).map_err(failed)?;
            let verifier = Verifier::new(oidc, http.reqwest().clone()).map_err(failed)?;
            verifiers.push((idp.name.clone(), Arc::new(verifier)));
            // Overages resolve through the IdP's own Graph client, or through the `azure_ad`
            // credentials a login-only IdP carries for them.
            match (&idp.kind, Source::build(idp)) {
                (_, Source::AzureAd(graph)) => graphs.push((idp.name.clone(), graph)),
                (
                    IdpKind::Oidc {
                        overage: Some(azure),
                    },
                    _,
                ) => graphs.push((
                    idp.name.clone(),
                    Arc::new(GraphSource::new(azure, false, &idp.user_key)),
                )),
                _ => {}
            }
        }
        let (retire, retired) = watch::channel(false);
        Ok(Providers {
            built_from: built_from(config),
            verifiers,
            graphs,
            _retired: retire,
            retired,
        })
    }

    /// Whether `config` would build these same providers.
    pub(crate) fn serve(&self, config: &Config) -> bool {
        self.built_from == built_from(config)
    }

    /// Whether every verifier has loaded its discovery document and JWKS (`/readyz`).
    pub(crate) fn loaded(&self) -> bool {
        self.verifiers.iter().all(|(_, v)| v.is_loaded())
    }

    /// The verifier of `idp`.
    pub(crate) fn verifier(&self, idp: &IdpName) -> Option<&Arc<Verifier>> {
        self.verifiers
            .iter()
            .find(|(n, _)| n == idp)
            .map(|(_, v)| v)
    }

    /// The Graph client that resolves `idp`'s overages.
    pub(crate) fn graph(&self, idp: &IdpName) -> Option<&Arc<GraphSource>> {
        self.graphs.iter().find(|(n, _)| n == idp).map(|(_, g)| g)
    }

    /// Loads each verifier (again every few seconds until it loads), then refreshes its JWKS on
    /// a timer, until `stop` or until these providers are dropped.
    pub(crate) fn spawn_loaders(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.verifiers
            .iter()
            .map(|(name, verifier)| {
                let (name, verifier) = (name.clone(), verifier.clone());
                let (mut stop, mut retired) = (stop.clone(), self.retired.clone());
                tokio::spawn(async move {
                    loop {
                        // Discovery until it loads, then the JWKS alone.
                        match verifier.refresh().await {
                            Ok(()) => {
                                info!(idp = %name, issuer = verifier.issuer(), "OIDC keys loaded.")
                            }
                            Err(e) => warn!(idp = %name, "{e}"),
                        }
                        let wait = if verifier.is_loaded() {
                            JWKS_REFRESH
                        } else {
                            LOAD_RETRY
                        };
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = crate::sync::stopped(&mut stop) => return,
                            () = crate::sync::stopped(&mut retired) => return,
                        }
                    }
                })
            })
            .collect()
    }
}

/// What the providers of `config` are built from.
fn built_from(config: &Config) -> Vec<Built> {
    config
        .idps
        .iter()
        .filter_map(|idp| {
            let overage = match &idp.kind {
                IdpKind::AzureAd(azure)
                | IdpKind::Oidc {
                    overage: Some(azure),
                } => Some((
                    azure.tenant_id.clone(),
                    azure.client_id.clone(),
                    azure.graph_url.clone(),
                )),
                _ => None,
            };
            Some(Built {
                idp: idp.name.clone(),
                oidc: idp.oidc.clone()?,
                http: http_of(idp),
                overage,
            })
        })
        .collect()
}

/// The HTTP settings the provider's discovery and JWKS are fetched with: the IdP's own
/// (`ca_file`, `tls_insecure`, `proxy`, timeouts) when its kind has them, else the defaults.
fn http_of(idp: &IdpConfig) -> HttpConfig {
    match &idp.kind {
        IdpKind::AzureAd(azure)
        | IdpKind::Oidc {
            overage: Some(azure),
        } => azure.http.clone(),
        IdpKind::Okta(okta) => okta.http.clone(),
        _ => HttpConfig::default(),
    }
}
