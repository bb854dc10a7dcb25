//! Serves a generated fake tenant or org for `scripts/bench` until standard input closes.
//!
//! `fake-server graph|okta --users N --groups N --memberships N [--seed N] [--rate-limit N]
//! [--export PATH]` prints the server's URL on one line; `--export` also writes the same
//! directory as an idpsync directory export (graph only), for reading it through the file IdP.
//!
//! `fake-server odc|scim|jira --users N [--rate-limit N --window-ms MS]` serves a group store
//! holding users `user000000@example.com`… and the empty groups `Team A` and `Team B` (ODC: in
//! an environment whose key is printed on a second line). Credentials: ODC client `bench` with
//! secret `bench-secret`, SCIM token `bench-token`, Jira `bench@example.com` with `bench-token`.
//!
//! Counters are at `GET /_fake/stats`.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().cloned().unwrap_or_default();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: usize| {
        value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    };
    let (users, groups, memberships) = (
        number("--users", 1000),
        number("--groups", 100),
        number("--memberships", 10_000),
    );
    let seed = number("--seed", 42) as u64;
    let _server = match kind.as_str() {
        "graph" => {
            let tenant = fakes::graph::Tenant::generate(users, groups, memberships, seed);
            if let Some(path) = value("--export") {
                std::fs::write(&path, serde_json::to_vec(&tenant.export()).unwrap()).unwrap();
            }
            let fake = fakes::graph::FakeGraph::start(tenant, Default::default());
            println!("{}", fake.url());
            Box::new(fake) as Box<dyn std::any::Any>
        }
        "okta" => {
            let org = fakes::okta::Org::generate(users, groups, memberships, seed);
            let switches = fakes::okta::Switches {
                rate_limit: number("--rate-limit", 600) as u64,
                ..Default::default()
            };
            let fake = fakes::okta::FakeOkta::start(org, switches);
            println!("{}", fake.url());
            Box::new(fake) as Box<dyn std::any::Any>
        }
        "odc" => {
            let switches = fakes::odc::Switches {
                rate_limit: number("--rate-limit", 100) as u64,
                window: std::time::Duration::from_millis(number("--window-ms", 60_000) as u64),
                ..Default::default()
            };
            let fake = fakes::odc::FakeOdc::start_with("bench", "bench-secret", switches);
            let environment = fake.add_environment("production");
            fake.seed_users(users);
            for group in ["Team A", "Team B"] {
                fake.add_group(&environment, group);
            }
            println!("{}\n{environment}", fake.portal_url());
            Box::new(fake) as Box<dyn std::any::Any>
        }
        "scim" => {
            let fake = fakes::scim::FakeScim::start("bench-token");
            fake.seed_users(users);
            for group in ["Team A", "Team B"] {
                fake.add_group(group);
            }
            println!("{}", fake.url());
            Box::new(fake) as Box<dyn std::any::Any>
        }
        "jira" => {
            let fake = fakes::jira::FakeJira::start("bench@example.com", "bench-token");
            fake.set_rate_limit(
                number("--rate-limit", 100) as u64,
                number("--window-ms", 1000) as u64,
            );
            let emails: Vec<String> = (0..users)
                .map(|i| format!("user{i:06}@example.com"))
                .collect();
            fake.add_users(&emails);
            for group in ["Team A", "Team B"] {
                fake.add_group(group);
            }
            println!("{}", fake.site_url());
            Box::new(fake) as Box<dyn std::any::Any>
        }
        _ => {
            eprintln!(
                "usage: fake-server graph|okta --users N --groups N --memberships N [--seed N] [--rate-limit N] [--export PATH]\n       fake-server odc|scim|jira --users N [--rate-limit N --window-ms MS]"
            );
            std::process::exit(2);
        }
    };
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
