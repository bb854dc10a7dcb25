//! The systemd unit and the example configuration it runs: `systemd-analyze verify` accepts the
//! unit, `systemd-analyze security --offline=true` rates its exposure at most 2.0, and the
//! example configuration passes `idpsync check` with its secrets given as systemd credentials.

use std::path::Path;
use std::process::Command;

use crate::common::{BIN, Env};

const UNIT: &str = include_str!("../../systemd/idpsync.service");
const EXAMPLE: &str = include_str!("../../config/idpsync.toml.example");

/// The unit with `ExecStart=` pointing at the binary under test (verify checks it exists).
fn unit_in(env: &Env) -> std::path::PathBuf {
    let unit = UNIT.replace("/usr/local/bin/idpsync", BIN);
    let path = env.path("idpsync.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn analyze(args: &[&str], unit: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze runs (scripts/test installs systemd when it is missing)")
}

#[test]
fn the_unit_verifies() {
    let env = Env::empty();
    let out = analyze(&["verify"], &unit_in(&env));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_unit_is_hardened() {
    let env = Env::empty();
    let unit = unit_in(&env);
    // --threshold is in tenths: 20 means an overall exposure of at most 2.0 ("OK").
    let out = analyze(&["security", "--offline=true", "--threshold=20"], &unit);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in {text}"));
    let score: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {overall:?}"));
    assert!(score <= 2.0, "{overall}");
    for key in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=idpsync",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
        "LoadCredential=app.token:",
        "LoadCredential=ldap.password:",
    ] {
        assert!(UNIT.contains(key), "the unit lacks {key:?}");
    }
}

#[test]
fn the_example_configuration_checks_with_credentials() {
    let env = Env::empty();
    env.write_config_never_connected(
        EXAMPLE,
        "the shipped example is only checked, never connected (no --connect)",
    );
    let credentials = env.path("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("app.token"), "app-secret\n").unwrap();
    std::fs::write(credentials.join("ldap.password"), "ldap-secret\n").unwrap();
    let out = env.run_with(
        &["check"],
        &[("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap())],
    );
    out.expect(0);
    assert!(
        out.stdout
            .contains("idp corp: ldap ldaps://ldap.example.com:636"),
        "{out:?}"
    );
    for secret in ["app-secret", "ldap-secret"] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    }
}
