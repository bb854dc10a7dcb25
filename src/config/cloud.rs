//! The keys of `[[idp]]` entries with `kind = "azure_ad"` (Microsoft Graph) and `kind = "okta"`
//! (SPEC §2; wire details in reference/idp-apis.md §1–§2).
//!
//! Credentials are read and checked here, once: a secret from `X_file` or `env:`, a private key
//! that must parse, a certificate whose SHA-256 thumbprint the client assertion carries. A key
//! that does not parse is a configuration error naming the key, not a failed run later.

use std::path::Path;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::http::{self, HttpConfig};
use super::reader::{ConfigError, Located, Section};
use super::secret;

/// How to reach and read one Entra ID tenant through Microsoft Graph.
#[derive(Debug, Clone)]
pub struct AzureAdConfig {
    /// The tenant's id (a GUID) or one of its domain names.
    pub tenant_id: String,
    /// The app registration's client id.
    pub client_id: String,
    /// A client secret or a certificate.
    pub credential: AzureCredential,
    /// An OData `$filter` choosing the groups read; all groups when absent.
    pub group_filter: Option<String>,
    /// Whether the filter is an advanced query (`ConsistencyLevel: eventual` and `$count=true`).
    pub advanced_query: bool,
    /// Where tokens are issued (`https://login.microsoftonline.com`).
    pub authority_url: String,
    /// Graph's base URL without `/v1.0` (`https://graph.microsoft.com`).
    pub graph_url: String,
    /// Members read through JSON `$batch`, up to 20 requests in one.
    pub batch: bool,
    /// Connection, concurrency and retries.
    pub http: HttpConfig,
}

/// An Entra app's credential.
#[derive(Debug, Clone)]
pub enum AzureCredential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate: a client assertion signed with the private key, naming the certificate by
    /// its SHA-256 thumbprint (`x5t#S256`).
    Certificate {
        /// base64url of the SHA-256 of the certificate's DER.
        thumbprint_s256: String,
        /// The PEM private key (RSA).
        private_key: SecretString,
    },
}

/// How to reach and read one Okta org.
#[derive(Debug, Clone)]
pub struct OktaConfig {
    /// The org's URL (`https://example.okta.com`).
    pub org_url: String,
    /// An API token or a service app.
    pub credential: OktaCredential,
    /// An Okta `filter` expression for `/api/v1/groups`.
    pub group_filter: Option<String>,
    /// An Okta `search` expression for `/api/v1/groups`.
    pub group_search: Option<String>,
    /// The share of each rate limit this client may take (SPEC default 0.5).
    pub rate_limit_share: f64,
    /// Users asked for per page of a group's members (`limit`).
    pub page_size: u32,
    /// Connection, concurrency and retries.
    pub http: HttpConfig,
}

/// An Okta credential.
#[derive(Debug, Clone)]
pub enum OktaCredential {
    /// `Authorization: SSWS <token>`.
    ApiToken(SecretString),
    /// An OAuth 2.0 service app authenticating with a `private_key_jwt` client assertion.
    ServiceApp {
        /// The service app's client id.
        client_id: String,
        /// The PEM private key (RSA or EC P-256).
        private_key: SecretString,
        /// The `kid` of the registered public key, when the app has several.
        key_id: Option<String>,
    },
}

/// Reads the `azure_ad` keys of `s` (the common `[[idp]]` keys are read by the caller).
pub(super) fn read_azure_ad(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
) -> Result<AzureAdConfig, ConfigError> {
    let tenant_id = required(s, "tenant_id", "00000000-0000-0000-0000-000000000000")?;
    read_azure_ad_of(s, tenant_id, dir, env)
}

/// The `azure_ad` credentials an `oidc` IdP may carry to resolve Entra's groups overage (SPEC
/// §2): the same keys as `kind = "azure_ad"`, present when `tenant_id` is.
pub(super) fn read_overage_credentials(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
) -> Result<Option<Box<AzureAdConfig>>, ConfigError> {
    match optional(s, "tenant_id")? {
        Some(tenant_id) => Ok(Some(Box::new(read_azure_ad_of(s, tenant_id, dir, env)?))),
        None => Ok(None),
    }
}

/// The `azure_ad` keys of `s` but `tenant_id`.
fn read_azure_ad_of(
    s: &mut Section<'_>,
    tenant_id: String,
    dir: &Path,
    env: &[(String, String)],
) -> Result<AzureAdConfig, ConfigError> {
    let client_id = required(s, "client_id", "the app registration's client id")?;
    let secret = secret::read(s, "client_secret", dir, env)?;
    let certificate = s.string("certificate_file")?;
    let private_key = secret::read(s, "private_key", dir, env)?;
    let credential = match (secret, certificate, private_key) {
        (Some(secret), None, None) => AzureCredential::Secret(secret),
        (None, Some(certificate), Some(private_key)) => {
            let path = dir.join(&certificate.value);
            let thumbprint_s256 = thumbprint(&path)
                .map_err(|m| s.error_from("certificate_file", &certificate.origin, m))?;
            check_key(&private_key, false).map_err(|m| s.error("private_key_file", m))?;
            AzureCredential::Certificate {
                thumbprint_s256,
                private_key,
            }
        }
        _ => {
            return Err(s.entry_error(
                "an azure_ad IdP needs either client_secret_file, or certificate_file with private_key_file",
            ));
        }
    };
    let group_filter = optional(s, "group_filter")?;
    let advanced_query = match s.boolean("advanced_query")? {
        Some(v) => v.value,
        None => group_filter.as_deref().is_some_and(needs_advanced_query),
    };
    Ok(AzureAdConfig {
        tenant_id,
        client_id,
        credential,
        group_filter,
        advanced_query,
        authority_url: http::url(
            s,
            "authority_url",
            Some("https://login.microsoftonline.com"),
            "",
        )?,
        graph_url: http::url(s, "graph_url", Some("https://graph.microsoft.com"), "")?,
        batch: s.boolean("batch")?.is_some_and(|v| v.value),
        http: http::read(s, dir)?,
    })
}

/// Reads the `okta` keys of `s` (the common `[[idp]]` keys are read by the caller).
pub(super) fn read_okta(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
) -> Result<OktaConfig, ConfigError> {
    let org_url = http::url(s, "org_url", None, "https://example.okta.com")?;
    let token = secret::read(s, "api_token", dir, env)?;
    let client_id = optional(s, "client_id")?;
    let private_key = secret::read(s, "private_key", dir, env)?;
    let key_id = optional(s, "key_id")?;
    let has_key_id = key_id.is_some();
    let credential = match (token, client_id, private_key) {
        (Some(token), None, None) => OktaCredential::ApiToken(token),
        (None, Some(client_id), Some(private_key)) => {
            check_key(&private_key, true).map_err(|m| s.error("private_key_file", m))?;
            OktaCredential::ServiceApp {
                client_id,
                private_key,
                key_id,
            }
        }
        _ => {
            return Err(s.entry_error(
                "an okta IdP needs either api_token_file (SSWS), or client_id with private_key_file (a service app)",
            ));
        }
    };
    if has_key_id && matches!(credential, OktaCredential::ApiToken(_)) {
        return Err(s.error("key_id", "key_id goes with client_id and private_key_file"));
    }
    let group_filter = optional(s, "group_filter")?;
    let group_search = optional(s, "group_search")?;
    if group_filter.is_some() && group_search.is_some() {
        return Err(s.error(
            "group_search",
            "give group_filter (Okta's filter) or group_search (Okta's search), not both",
        ));
    }
    let rate_limit_share = match s.float("rate_limit_share")? {
        None => 0.5,
        Some(v) if v.value > 0.0 && v.value <= 1.0 => v.value,
        Some(v) => {
            return Err(s.error_from(
                "rate_limit_share",
                &v.origin,
                "must be more than 0 and at most 1",
            ));
        }
    };
    let page_size = match s.unsigned("page_size")? {
        None => 200,
        Some(v) if (1..=1000).contains(&v.value) => v.value as u32,
        Some(v) => {
            return Err(s.error_from("page_size", &v.origin, "must be between 1 and 1000"));
        }
    };
    Ok(OktaConfig {
        org_url,
        credential,
        group_filter,
        group_search,
        rate_limit_share,
        page_size,
        http: http::read(s, dir)?,
    })
}

/// An `azure_ad` IdP's `user_key`: `mail` (the default) or `upn` (`userPrincipalName`).
pub(super) fn azure_user_key(
    s: &Section<'_>,
    value: Option<Located<String>>,
) -> Result<String, ConfigError> {
    match value {
        None => Ok("mail".to_owned()),
        Some(v) => match v.value.as_str() {
            "mail" => Ok("mail".to_owned()),
            "upn" | "userPrincipalName" => Ok("upn".to_owned()),
            other => Err(s.error_from(
                "user_key",
                &v.origin,
                format!("an azure_ad IdP takes the user key from mail or upn, not {other:?}"),
            )),
        },
    }
}

/// An `okta` IdP's `user_key`: `profile.email` (the default, or `email`) or `profile.login`
/// (`login`).
pub(super) fn okta_user_key(
    s: &Section<'_>,
    value: Option<Located<String>>,
) -> Result<String, ConfigError> {
    match value {
        None => Ok("profile.email".to_owned()),
        Some(v) => match v.value.as_str() {
            "email" | "profile.email" => Ok("profile.email".to_owned()),
            "login" | "profile.login" => Ok("profile.login".to_owned()),
            other => Err(s.error_from(
                "user_key",
                &v.origin,
                format!("an okta IdP takes the user key from email or login, not {other:?}"),
            )),
        },
    }
}

/// Graph needs `ConsistencyLevel: eventual` with `$count=true` for these operators
/// (learn: /graph/aad-advanced-queries): `endsWith`, `ne`, `not`, `$count` and `/$count` in a filter.
fn needs_advanced_query(filter: &str) -> bool {
    let lower = filter.to_ascii_lowercase();
    lower.contains("endswith(")
        || lower.contains(" ne ")
        || lower.contains("not(")
        || lower.contains("not ")
        || lower.contains("$count")
}

fn required(s: &mut Section<'_>, key: &str, example: &str) -> Result<String, ConfigError> {
    optional(s, key)?.ok_or_else(|| s.entry_error(format!("this IdP needs {key} = \"{example}\"")))
}

fn optional(s: &mut Section<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match s.string(key)? {
        Some(v) if v.value.trim().is_empty() => {
            Err(s.error_from(key, &v.origin, "must not be empty"))
        }
        Some(v) => Ok(Some(v.value.trim().to_owned())),
        None => Ok(None),
    }
}

/// base64url of the SHA-256 of the PEM certificate's DER, as `x5t#S256` carries it.
fn thumbprint(path: &Path) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a PEM certificate from {}: {e}", path.display()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// Checks the PEM private key parses: RSA always, EC P-256 where `ec_allowed`.
fn check_key(key: &SecretString, ec_allowed: bool) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    let pem = key.expose_secret().as_bytes();
    // jsonwebtoken takes a certificate's public key as well: insist on a private key first.
    if rustls_pki_types::PrivateKeyDer::from_pem_slice(pem).is_ok()
        && (jsonwebtoken::EncodingKey::from_rsa_pem(pem).is_ok()
            || (ec_allowed && jsonwebtoken::EncodingKey::from_ec_pem(pem).is_ok()))
    {
        return Ok(());
    }
    Err(if ec_allowed {
        "is not a PEM RSA or EC (P-256) private key".to_owned()
    } else {
        "is not a PEM RSA private key".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::needs_advanced_query;

    #[test]
    fn advanced_operators_are_recognised() {
        assert!(needs_advanced_query("endswith(mail,'@contoso.com')"));
        assert!(needs_advanced_query("displayName ne 'x'"));
        assert!(needs_advanced_query(
            "NOT(groupTypes/any(c:c eq 'Unified'))"
        ));
        assert!(!needs_advanced_query("startswith(displayName,'app-')"));
        assert!(!needs_advanced_query("groupTypes/any(c:c eq 'Unified')"));
    }
}
