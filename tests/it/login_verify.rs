//! The login token verifier against the fake OpenID provider: every token SPEC §4 refuses is
//! refused with a reason, every good one passes, and key rotation is followed by one refetch.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fakes::oidc::{FakeOidc, SigningKey, forge, sign_with};
use idpsync::config::OidcConfig;
use idpsync::login::{Rejected, Verifier};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

fn key(kid: &str, alg: Algorithm, file: &str) -> SigningKey {
    let path = format!("{}/tests/fixtures/keys/{file}", env!("CARGO_MANIFEST_DIR"));
    SigningKey {
        kid: kid.to_owned(),
        alg,
        pem: std::fs::read_to_string(path).expect("fixture key"),
    }
}

fn rsa() -> SigningKey {
    key("k-rsa", Algorithm::RS256, "entra-app.key")
}

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_owned(),
        client_id: "app-1".to_owned(),
        groups_claim: "groups".to_owned(),
        claim_delimiter: None,
        user_claim: "email".to_owned(),
        max_token_age: Duration::from_secs(600),
        auto_create: true,
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// Claims of a good token issued at `now`.
fn claims(fake: &FakeOidc, now: DateTime<Utc>) -> Value {
    let t = now.timestamp();
    json!({"iss": fake.issuer(), "aud": "app-1", "sub": "s-1", "iat": t, "exp": t + 3600,
           "email": "ann@example.com", "groups": ["0f6c3a4e-1111-4000-8000-000000000001"]})
}

async fn loaded(fake: &FakeOidc) -> Verifier {
    assert!(
        fake.issuer().starts_with("http://127.0.0.1:"),
        "loopback only"
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = Verifier::new(&config(&fake.issuer()), http).unwrap();
    assert!(!verifier.is_loaded());
    verifier.load().await.unwrap();
    assert!(verifier.is_loaded());
    verifier
}

fn with(mut claims: Value, edits: Value) -> Value {
    for (k, v) in edits.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn refused(result: Result<idpsync::login::Verified, Rejected>, why: &str) {
    match result {
        Err(Rejected::Invalid(detail)) => assert!(detail.contains(why), "{detail:?} lacks {why:?}"),
        other => panic!("expected a refusal for {why}, got {other:?}"),
    }
}

#[tokio::test]
async fn good_tokens_of_each_algorithm_pass_with_their_claims() {
    let fake = FakeOidc::start(vec![
        rsa(),
        key("k-ps", Algorithm::PS256, "okta-rsa.key"),
        key("k-ec", Algorithm::ES256, "okta-ec.key"),
    ]);
    let verifier = loaded(&fake).await;
    let now = now();
    for signer in [
        rsa(),
        key("k-ps", Algorithm::PS256, "okta-rsa.key"),
        key("k-ec", Algorithm::ES256, "okta-ec.key"),
    ] {
        let token = sign_with(&signer, Some(&signer.kid), &claims(&fake, now));
        let verified = verifier.verify(&token, now).await.unwrap();
        assert_eq!(verified.subject, "s-1");
        assert_eq!(verified.issued_at, now);
        assert_eq!(verified.claims["email"], "ann@example.com");
        assert_eq!(
            verified.claims["groups"][0],
            "0f6c3a4e-1111-4000-8000-000000000001"
        );
    }
}

#[tokio::test]
async fn time_checks_allow_a_minute_of_skew_and_no_more() {
    let fake = FakeOidc::start(vec![rsa()]);
    let verifier = loaded(&fake).await;
    let now = now();
    let t = now.timestamp();
    let good = claims(&fake, now);
    let cases = [
        (json!({"exp": t - 30}), None),
        (json!({"exp": t - 61}), Some("expired")),
        (json!({"nbf": t + 30}), None),
        (json!({"nbf": t + 120}), Some("not valid yet")),
        (json!({"iat": t - 590}), None),
        (json!({"iat": t - 700}), Some("max_token_age")),
        (json!({"iat": t + 120}), Some("future")),
    ];
    for (edit, why) in cases {
        let token = fake.sign(&with(good.clone(), edit.clone()));
        match why {
            None => assert!(verifier.verify(&token, now).await.is_ok(), "{edit}"),
            Some(why) => refused(verifier.verify(&token, now).await, why),
        }
    }
}

#[tokio::test]
async fn another_audience_or_issuer_is_refused() {
    let fake = FakeOidc::start(vec![rsa()]);
    let verifier = loaded(&fake).await;
    let now = now();
    let good = claims(&fake, now);
    let token = fake.sign(&with(good.clone(), json!({"aud": "another-app"})));
    refused(verifier.verify(&token, now).await, "audience");
    let token = fake.sign(&with(good, json!({"iss": "http://127.0.0.1:1"})));
    refused(verifier.verify(&token, now).await, "issuer");
}

#[tokio::test]
async fn unsigned_hmac_forged_and_garbage_tokens_are_refused() {
    let fake = FakeOidc::start(vec![rsa()]);
    let verifier = loaded(&fake).await;
    let now = now();
    let good = claims(&fake, now);
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &good, b"");
    refused(verifier.verify(&none, now).await, "No signature");
    // HS256 keyed with the provider's public key: the classic algorithm confusion.
    let public = std::fs::read(format!(
        "{}/tests/fixtures/keys/entra-app.pub",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("k-rsa".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    refused(verifier.verify(&hmac, now).await, "`HS256` is not one of");
    // A good token with one byte of its signature changed.
    let token = fake.sign(&good);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = signature.as_bytes().to_vec();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{signed}.{}", String::from_utf8(bytes).unwrap());
    refused(verifier.verify(&forged, now).await, "bad signature");
    for garbage in ["", "garbage", "a.b.c", "e30.e30.e30"] {
        refused(verifier.verify(garbage, now).await, "not a JWT");
    }
    for result in [none, hmac, forged] {
        let outcome = verifier.verify(&result, now).await;
        let Err(Rejected::Invalid(detail)) = outcome else {
            panic!("refused")
        };
        assert!(
            !detail.contains(&result),
            "a refusal never quotes the token"
        );
    }
}

#[tokio::test]
async fn a_key_signs_only_with_its_own_algorithm_and_a_stranger_key_under_its_kid_fails() {
    let fake = FakeOidc::start(vec![rsa(), key("k-ec", Algorithm::ES256, "okta-ec.key")]);
    let verifier = loaded(&fake).await;
    let now = now();
    // The RSA key published for RS256, used for PS256 under its kid.
    let pss = key("k-rsa", Algorithm::PS256, "entra-app.key");
    let token = sign_with(&pss, Some("k-rsa"), &claims(&fake, now));
    refused(verifier.verify(&token, now).await, "kid");
    // Another RSA key of the right algorithm, under the published kid.
    let stranger = key("k-rsa", Algorithm::RS256, "okta-rsa.key");
    let token = sign_with(&stranger, Some("k-rsa"), &claims(&fake, now));
    refused(verifier.verify(&token, now).await, "bad signature");
    // Another P-256 key under the EC key's kid; an RSA signature under it.
    let stranger = key("k-ec", Algorithm::ES256, "stranger-ec.key");
    let token = sign_with(&stranger, Some("k-ec"), &claims(&fake, now));
    refused(verifier.verify(&token, now).await, "bad signature");
    let token = sign_with(&rsa(), Some("k-ec"), &claims(&fake, now));
    refused(verifier.verify(&token, now).await, "kid");
}

#[tokio::test]
async fn a_rotated_key_is_found_by_one_refetch_and_unknown_kids_do_not_refetch_again() {
    let fake = FakeOidc::start(vec![rsa()]);
    let verifier = loaded(&fake).await;
    let now = now();
    let fetched = || fake.state().jwks_fetches.load(Ordering::Relaxed);
    assert_eq!(fetched(), 1);
    fake.publish(key("k-next", Algorithm::ES256, "okta-ec.key"));
    fake.retire("k-rsa");
    let token = fake.sign(&claims(&fake, now));
    verifier.verify(&token, now).await.unwrap();
    assert_eq!(fetched(), 2, "one refetch found the new key");
    // Another unknown kid within the minute: refused without asking the provider again.
    let stranger = sign_with(&rsa(), Some("k-unknown"), &claims(&fake, now));
    refused(verifier.verify(&stranger, now).await, "kid");
    assert_eq!(fetched(), 2);
    // The old key is gone from the refetched set.
    let old = sign_with(&rsa(), Some("k-rsa"), &claims(&fake, now));
    refused(verifier.verify(&old, now).await, "kid");
    // The timer's refresh swaps the set in without a request waiting on it.
    verifier.refresh().await.unwrap();
    assert_eq!(fetched(), 3);
}

#[tokio::test]
async fn issuers_are_https_or_loopback_http_and_an_unloaded_verifier_says_so() {
    let http = reqwest::Client::new();
    for bad in ["http://idp.example.com", "ftp://127.0.0.1", "not a url"] {
        assert!(Verifier::new(&config(bad), http.clone()).is_err(), "{bad}");
    }
    for good in [
        "https://idp.example.com/tenant/v2.0",
        "http://127.0.0.1:9",
        "http://[::1]:9",
    ] {
        assert!(Verifier::new(&config(good), http.clone()).is_ok(), "{good}");
    }
    let unloaded = Verifier::new(&config("http://127.0.0.1:9"), http).unwrap();
    assert!(unloaded.load().await.is_err(), "nothing listens on port 9");
    let fake = FakeOidc::start(vec![rsa()]);
    let token = fake.sign(&claims(&fake, now()));
    assert!(matches!(
        unloaded.verify(&token, now()).await,
        Err(Rejected::NotLoaded(_))
    ));
}
