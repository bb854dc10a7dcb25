//! The admin REST API's lists, reads and runs through the running service: pages with cursors,
//! users and mappings with their status, reconciles — dry runs, real runs followed to their end,
//! a run asked twice while it waits, runs dropped at a stop, refusals approved — and direct edits
//! refused in a stage a remote store serves.

use serde_json::{Value, json};

use crate::admin_api_site::{ADMIN, admin_env, cli_audit, finished, get, problem, send, started};
use crate::common::{REPORT_FIELDS, corp_export, keys, sorted};
use crate::service::{http_send, idp_status, replace_export, status_of, stop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages_with_a_cursor_and_a_limit() {
    let env = admin_env("");
    let (service, admin) = started(&env).await;
    for name in ["A", "B", "C"] {
        let created = send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": name, "stage": "development"}),
        );
        assert_eq!(created.status, 201, "{created:?}");
    }
    let all = get(admin, "/v1/admin/groups").json();
    assert_eq!(all["next"], Value::Null);
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C", "Marketing", "Testers"]);
    let cli = env
        .run(&["groups", "list", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(all["items"], cli, "the API's list is the CLI's");

    let mut walked = Vec::new();
    let mut path = "/v1/admin/groups?limit=2".to_owned();
    loop {
        let page = get(admin, &path).json();
        assert!(page["items"].as_array().unwrap().len() <= 2, "{page}");
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/admin/groups?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(Value::from(walked), all["items"]);
    let development = get(admin, "/v1/admin/groups?stage=development").json();
    assert_eq!(development["items"].as_array().unwrap().len(), 3);
    problem(
        &get(admin, "/v1/admin/groups?limit=0"),
        400,
        "limit 0 is out of range",
    );
    problem(
        &get(admin, "/v1/admin/groups?limit=5000"),
        400,
        "out of range",
    );
    problem(&get(admin, "/v1/admin/groups?cursor=zzz"), 400, "cursor");
    problem(&get(admin, "/v1/admin/runs?cursor=zzz"), 400, "cursor");
    problem(&get(admin, "/v1/admin/audit?cursor=zzz"), 400, "cursor");

    // The audit, paged in the state, walks to the CLI's whole list; a stage alone filters too.
    let whole = cli_audit(&env);
    assert!(whole.len() > 5, "{whole:?}");
    let mut walked = Vec::new();
    let mut path = "/v1/admin/audit?limit=3".to_owned();
    loop {
        let page = get(admin, &path).json();
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/admin/audit?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, whole);
    let development = get(admin, "/v1/admin/audit?stage=development&limit=1000").json();
    let items = development["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the three creates: {development}");
    assert!(
        items
            .iter()
            .all(|r| r["stage"] == "development" && r["op"] == "group.create")
    );
    problem(
        &get(admin, "/v1/admin/groups?stage=staging"),
        400,
        "not one of daemon.stages",
    );

    // Runs page newest first, one at a time.
    for _ in 0..2 {
        let started = http_send(admin, "POST", "/v1/admin/reconcile", Some(ADMIN), None);
        finished(admin, started.json()["href"].as_str().unwrap());
    }
    let first = get(admin, "/v1/admin/runs?limit=1").json();
    let second = get(
        admin,
        &format!(
            "/v1/admin/runs?limit=1&cursor={}",
            first["next"].as_str().unwrap()
        ),
    )
    .json();
    assert!(first["items"][0]["started"].as_str() >= second["items"][0]["started"].as_str());
    assert_ne!(first["items"][0]["run_id"], second["items"][0]["run_id"]);
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Users and mappings
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_mappings_say_what_the_cli_and_the_last_read_say() {
    let mapping = "\n[[mapping]]\nidp = \"corp\"\nidp_group = \"Finance\"\ngroup = \"Testers\"\nstage = \"qa\"\n\
                   \n[[mapping]]\nidp = \"corp\"\nidp_group = \"g-eng\"\ngroup = \"Nowhere\"\nstage = \"qa\"\n";
    let env = admin_env(mapping);
    let (service, admin) = started(&env).await;

    let user = get(admin, "/v1/admin/users/Ben%40Example.com");
    assert_eq!(user.status, 200, "{user:?}");
    let cli = env
        .run(&["users", "show", "ben@example.com", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(user.json(), cli);
    let long = format!("/v1/admin/users/{}", "k".repeat(321));
    problem(&get(admin, &long), 400, "longer than 320 bytes");
    problem(&get(admin, "/v1/admin/users/%20"), 400, "must not be empty");

    let mappings = get(admin, "/v1/admin/mappings").json();
    let items = mappings["items"].as_array().unwrap();
    let line = |m: &Value| {
        format!(
            "{} {} -> {}/{} {} {}",
            m["idp"].as_str().unwrap(),
            m["idp_group"].as_str().unwrap(),
            m["stage"].as_str().unwrap(),
            m["group"].as_str().unwrap(),
            m["status"].as_str().unwrap(),
            m["reason"].as_str().unwrap_or("null")
        )
    };
    let lines: Vec<String> = items.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "corp Marketing Team -> production/Marketing active null",
            "corp g-eng -> qa/Testers active null",
            "corp Finance -> qa/Testers inactive idp_group_not_found",
            "corp g-eng -> qa/Nowhere inactive group_not_found",
        ]
    );
    for m in items {
        assert_eq!(
            keys(m),
            [
                "group",
                "idp",
                "idp_group",
                "reason",
                "stage",
                "status",
                "warning"
            ]
        );
    }
    // The group appears: its mapping is active at once, before any read.
    send(
        admin,
        "POST",
        "/v1/admin/groups",
        &json!({"name": "Nowhere", "stage": "qa"}),
    );
    let mappings = get(admin, "/v1/admin/mappings").json();
    assert_eq!(
        line(&mappings["items"][3]),
        "corp g-eng -> qa/Nowhere active null"
    );
    // A renamed group's mappings follow it, with a warning.
    send(
        admin,
        "PATCH",
        "/v1/admin/groups/qa/Nowhere",
        &json!({"name": "Somewhere"}),
    );
    let renamed = get(admin, "/v1/admin/mappings").json()["items"][3].clone();
    assert_eq!(renamed["status"], "active", "{renamed}");
    assert!(
        renamed["warning"].as_str().unwrap().contains("Somewhere"),
        "{renamed}"
    );
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Reconciles, runs and refusals
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_plan_run_and_approve_refusals() {
    let env = admin_env("\n[safety]\nmax_removals = 1\n");
    let (service, admin) = started(&env).await;

    // ana leaves "Marketing Team" and cid "Engineering": two removals, over the guard.
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    export["groups"][1]["members"] = json!(["u2"]);
    replace_export(&env, &export);

    // A dry run answers the reconcile document and writes nothing.
    let before = env.state();
    let plan = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?dry_run=true",
        Some(ADMIN),
        None,
    );
    assert_eq!(plan.status, 200, "{plan:?}");
    let plan = plan.json();
    assert_eq!(keys(&plan), sorted(REPORT_FIELDS));
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["refused"][0]["guard"], "removals", "{plan:#}");
    let allowed = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?dry_run=true&allow_removals=2",
        Some(ADMIN),
        None,
    )
    .json();
    assert_eq!(
        allowed["removes"].as_array().unwrap().len(),
        2,
        "{allowed:#}"
    );
    assert_eq!(env.state(), before, "dry runs write nothing");
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/reconcile?idp=nobody",
            Some(ADMIN),
            None,
        ),
        422,
        "nobody",
    );
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/reconcile?dry_run=perhaps",
            Some(ADMIN),
            None,
        ),
        400,
        "dry_run",
    );

    // A real run answers 202 and is followed to its end; it is refused, and the refusal is listed
    // with what would allow it.
    let started = http_send(admin, "POST", "/v1/admin/reconcile", Some(ADMIN), None);
    assert_eq!(started.status, 202, "{started:?}");
    let href = started.json()["href"].as_str().unwrap().to_owned();
    assert_eq!(started.header("location"), Some(href.as_str()));
    let done = finished(admin, &href);
    assert_eq!(done["exit_code"], 3, "{done:#}");
    assert_eq!(done["report"]["refused"][0]["idp"], "corp");
    assert_eq!(done["run"]["actor"], "api");
    assert_eq!(done["run"]["idps"][0]["outcome"], "refused");
    let refusals = get(admin, "/v1/admin/refusals").json();
    let refusal = &refusals["items"][0];
    assert_eq!(refusal["idp"], "corp");
    assert_eq!(refusal["guard"], "removals");
    assert!(
        refusal["allow"]
            .as_str()
            .unwrap()
            .ends_with("--idp corp --allow-removals 2"),
        "{refusal}"
    );
    assert_eq!(
        idp_status(&status_of(&env), "corp")["refusal"]["guard"],
        "removals"
    );
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/refusals/nobody/approve",
            Some(ADMIN),
            None,
        ),
        404,
        "no pending refusal",
    );

    // Approving what the caller no longer sees is refused: the refusal is another run's now.
    let stale = http_send(
        admin,
        "POST",
        "/v1/admin/refusals/corp/approve?run_id=an-older-run",
        Some(ADMIN),
        None,
    );
    problem(&stale, 409, "look at it again before approving");
    assert_eq!(
        get(admin, "/v1/admin/refusals").json()["items"][0],
        *refusal
    );

    // Approving runs exactly what `allow` names, and resolves it.
    let approved = http_send(
        admin,
        "POST",
        "/v1/admin/refusals/corp/approve",
        Some(ADMIN),
        None,
    );
    assert_eq!(approved.status, 202, "{approved:?}");
    let done = finished(admin, approved.json()["href"].as_str().unwrap());
    assert_eq!(done["exit_code"], 0, "{done:#}");
    assert_eq!(done["report"]["removes"].as_array().unwrap().len(), 2);
    assert_eq!(get(admin, "/v1/admin/refusals").json()["items"], json!([]));
    assert!(idp_status(&status_of(&env), "corp")["refusal"].is_null());
    let ana = env
        .run(&["users", "show", "ana@example.com", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(ana["groups"], json!([]));
    // The run history has both, newest first, and a run of the schedule is found by id too.
    let runs = get(admin, "/v1/admin/runs").json();
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items[0]["run_id"], done["run_id"]);
    let first = items.last().unwrap();
    assert_eq!(first["actor"], "service");
    let scheduled = get(
        admin,
        &format!("/v1/admin/runs/{}", first["run_id"].as_str().unwrap()),
    )
    .json();
    assert_eq!(scheduled["status"], "finished", "{scheduled}");
    problem(&get(admin, "/v1/admin/runs/no-such-run"), 404, "no run");
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// A remote store
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_edits_of_a_stage_a_remote_store_serves_are_refused_as_from_the_cli() {
    const SCIM_TOKEN: &str = "scim-token-admin-api";
    let scim = fakes::scim::FakeScim::start(SCIM_TOKEN);
    scim.add_group("Testers");
    let env = admin_env("");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{config}\n[store]\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"scim.token\"\nstages = [\"qa\"]\n{}",
        scim.url(),
        crate::cloud::FAST_RETRIES
    ));
    std::fs::write(env.path("scim.token"), SCIM_TOKEN).unwrap();
    let (service, admin) = started(&env).await;

    // The journal's sender works beside the test: the memberships are what must not change.
    let before = env.state().table("memberships").to_vec();
    let refused = problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Testers/users",
            &json!({"add": ["dee@example.com"]}),
        ),
        409,
        "stage qa is served by the scim store",
    );
    assert_eq!(refused["type"], "urn:idpsync:problem:remote_stage");
    let cli = env.run(&[
        "groups",
        "add-user",
        "Testers",
        "--stage",
        "qa",
        "dee@example.com",
    ]);
    cli.expect(2);
    assert!(
        cli.stderr.contains("stage qa is served by the scim store"),
        "{cli:?}"
    );
    assert_eq!(
        env.state().table("memberships"),
        before,
        "neither wrote anything"
    );
    // Stages the embedded store serves take direct edits as before.
    let created = send(
        admin,
        "POST",
        "/v1/admin/groups",
        &json!({"name": "Local", "stage": "production"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let added = send(
        admin,
        "PATCH",
        "/v1/admin/groups/production/Local/users",
        &json!({"add": ["dee@example.com"]}),
    );
    assert_eq!(added.status, 200, "{added:?}");
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Runs wait their turn; a stop drops the queued ones
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_asked_while_one_goes_wait_are_asked_once_and_end_at_a_stop() {
    let hole = crate::service::BlackHole::open();
    let env = admin_env(&hole.idp("slow", "60s"));
    // The run at start reads a listener that never answers: it holds the turn.
    let service = crate::service::start(&env).await;
    let admin = service.admin_addr().unwrap();
    let _connection = hole.wait_connected();

    // Asked twice while it waits, a run is one run; another ask is another run.
    let first = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?idp=corp",
        Some(ADMIN),
        None,
    );
    let again = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?idp=corp",
        Some(ADMIN),
        None,
    );
    let other = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?idp=corp&full=true",
        Some(ADMIN),
        None,
    );
    let href = |answer: &crate::service::Http| answer.json()["href"].as_str().unwrap().to_owned();
    assert_eq!(href(&first), href(&again));
    assert_ne!(href(&first), href(&other));
    for queued in [href(&first), href(&other)] {
        assert_eq!(get(admin, &queued).json()["status"], "queued");
    }

    // A stop drops the read in hand and the queued runs never start; the stop waits for them.
    stop(service).await;
    let state = rusqlite::Connection::open_with_flags(
        env.state_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let started: i64 = state
        .query_row("SELECT count(*) FROM runs WHERE actor = 'api'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(started, 0, "no queued run started after the stop");
    let memberships: i64 = state
        .query_row("SELECT count(*) FROM memberships", [], |r| r.get(0))
        .unwrap();
    assert_eq!(memberships, 0, "the run at start applied nothing");
}
