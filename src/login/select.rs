//! Which IdP a token is for: the one whose `[idp.oidc]` (issuer, audience) the token's `iss` and
//! `aud` name. Read from the payload before any check — only to choose the verifier, which then
//! checks both again against what it was configured with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// The two claims a token is routed by; every other claim is skipped unread.
#[derive(Deserialize)]
struct Routing {
    iss: String,
    aud: Audiences,
}

/// `aud`: one audience, or several (non-strings among them ignored).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audiences {
    One(String),
    Many(Vec<Value>),
}

/// The token's `iss` and its audiences, unverified; `None` when it is not a JWT with both.
pub fn issuer_and_audiences(token: &str) -> Option<(String, Vec<String>)> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_header, payload, _signature] = parts[..] else {
        return None;
    };
    let routing: Routing = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let audiences = match routing.aud {
        Audiences::One(one) => vec![one],
        Audiences::Many(many) => many
            .into_iter()
            .filter_map(|a| match a {
                Value::String(one) => Some(one),
                _ => None,
            })
            .collect(),
    };
    Some((routing.iss, audiences))
}

/// Whether a configured issuer is the token's (a trailing `/` aside).
pub fn same_issuer(configured: &str, token: &str) -> bool {
    configured.trim_end_matches('/') == token.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn issuer_and_audience_are_read_unverified() {
        assert_eq!(
            issuer_and_audiences(&token(r#"{"iss":"https://i","aud":"app"}"#)),
            Some(("https://i".into(), vec!["app".into()]))
        );
        assert_eq!(
            issuer_and_audiences(&token(r#"{"iss":"https://i","aud":["a","b"]}"#)),
            Some(("https://i".into(), vec!["a".into(), "b".into()]))
        );
        for bad in [
            "garbage".to_owned(),
            token(r#"{"aud":"app"}"#),
            token(r#"{"iss":"i","aud":7}"#),
            token(r#"{"iss":"i","aud":"a","iss":"j"}"#),
            token("not json"),
            format!("{}.more", token(r#"{"iss":"i","aud":"a"}"#)),
        ] {
            assert_eq!(issuer_and_audiences(&bad), None, "{bad}");
        }
        assert!(same_issuer("https://i/", "https://i"));
    }
}
