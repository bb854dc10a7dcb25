//! The web console at `/` of `admin_listen`, over plain HTTP (no browser): sign-in and its
//! cookie, the session guard, CSRF on every POST, the security headers on every page, and forms
//! that show refusals beside the field — each write checked in the store through the CLI.

use reqwest::header::SET_COOKIE;
use serde_json::json;

use crate::console_site::{
    ADMIN_TOKEN, CSP, Person, Site, assert_security_headers, between, console_env, finished_runs,
    group_in_store,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_sets_a_strict_session_cookie_and_a_wrong_token_gets_none() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);

    // Without a session every page redirects to the sign-in page, to come back.
    let answer = person.get("/groups/qa/Testers/users").await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.header("location"),
        "/sign-in?next=%2Fgroups%2Fqa%2FTesters%2Fusers"
    );
    let sign_in = person.get("/sign-in").await;
    assert_eq!(sign_in.status, 200);
    assert!(sign_in.body.contains("name=\"token\""), "{}", sign_in.body);

    // A wrong token: the form again with the error, no cookie, no session.
    let wrong = person
        .post(
            "/sign-in",
            &[("token", "not-the-token"), ("next", "/mappings")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(wrong.headers.get(SET_COOKIE).is_none(), "{wrong:?}");
    assert!(wrong.body.contains("id=\"token-error\""), "{}", wrong.body);
    assert!(
        wrong.body.contains("That is not the admin token"),
        "{}",
        wrong.body
    );
    let empty = person.post("/sign-in", &[("token", "")]).await;
    assert_eq!(empty.status, 401);
    assert!(empty.headers.get(SET_COOKIE).is_none());

    // The right one: a session cookie that scripts cannot read, sent to this site only, for 8 h.
    let right = person
        .post("/sign-in", &[("token", ADMIN_TOKEN), ("next", "/mappings")])
        .await;
    assert_eq!(right.status, 303, "{right:?}");
    assert_eq!(right.header("location"), "/mappings");
    let cookie = right.header("set-cookie").to_owned();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("idpsync_console="), "{cookie}");
    assert!(
        attributes[0].len() > "idpsync_console=".len() + 40,
        "a long random id: {cookie}"
    );
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(attributes.contains(&wanted), "{wanted} in {cookie}");
    }
    assert!(
        !cookie.contains(ADMIN_TOKEN),
        "the cookie never holds the token"
    );
    person.cookie = Some(attributes[0].to_owned());
    let mappings = person.get("/mappings").await;
    assert_eq!(mappings.status, 200);
    assert!(
        mappings.body.contains("Marketing Team"),
        "{}",
        mappings.body
    );
    // Signed in, the sign-in page sends on; another site's address is never where it sends.
    let again = person.get("/sign-in?next=%2F%2Fevil.example%2F").await;
    assert_eq!((again.status, again.header("location")), (303, "/groups"));
    // Browsers drop tabs and newlines from a Location and read `\` as `/`: none of these is
    // `//evil.example` there, nor any page but the console's own.
    for next in [
        "/%09/evil.example",
        "%2F%0A%2Fevil.example",
        "/%0D/evil.example",
        "/%5C/evil.example",
        "/%2509/evil.example",
        "/groups/%2509/x",
        "/v1/admin/groups",
    ] {
        let sent = person.get(&format!("/sign-in?next={next}")).await;
        assert_eq!(sent.status, 303, "{next}: {sent:?}");
        assert_eq!(sent.header("location"), "/groups", "{next}");
    }
    let back = person
        .get("/sign-in?next=%2Fusers%3Fkey%3Dana%2540example.com")
        .await;
    assert_eq!(back.header("location"), "/users?key=ana%40example.com");
    for next in ["/\t/evil.example", "/\n/evil.example", "/ /evil.example"] {
        let signed_in = person
            .post("/sign-in", &[("token", ADMIN_TOKEN), ("next", next)])
            .await;
        assert_eq!(signed_in.header("location"), "/groups", "{next:?}");
    }

    // The session is no credential of the REST API.
    let api = person.get("/v1/admin/groups").await;
    assert_eq!(api.status, 401, "{api:?}");

    // Sign-out ends the session and expires the cookie.
    let csrf = mappings.csrf();
    let out = person.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").contains("Max-Age=0"), "{out:?}");
    let after = person.get("/groups").await;
    assert_eq!(after.status, 303);
    assert!(
        after.header("location").starts_with("/sign-in"),
        "{after:?}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_posts_without_the_sessions_csrf_token_are_refused_and_change_nothing() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);
    let csrf = person.sign_in().await;
    let mut other = Person::at(&site);
    let others_csrf = other.sign_in().await;
    assert_ne!(csrf, others_csrf);
    let before = site.env.state().tables;
    let group = [
        ("stage", "production"),
        ("name", "Campaigns"),
        ("description", ""),
    ];

    for token in [None, Some("forged"), Some(others_csrf.as_str()), Some("")] {
        let mut fields = group.to_vec();
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let answer = person.post("/groups", &fields).await;
        assert_eq!(answer.status, 403, "token {token:?}: {answer:?}");
        assert!(answer.body.contains("security token"), "{}", answer.body);
        assert_eq!(answer.header("content-security-policy"), CSP);
    }
    // Every other form is guarded alike.
    for path in [
        "/groups/production/Marketing",
        "/groups/production/Marketing/roles",
        "/groups/production/Marketing/users/add",
        "/groups/production/Marketing/users/remove",
        "/groups/production/Marketing/delete",
        "/runs",
        "/refusals/corp/approve",
        "/sign-out",
    ] {
        let answer = person
            .post(path, &[("csrf", "forged"), ("user", "eve@example.com")])
            .await;
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
    }
    // Without a session a POST is sent to sign in; a browser's cross-site POST is refused first.
    let anonymous = Person::at(&site).post("/groups", &group).await;
    assert_eq!(anonymous.status, 303);
    assert!(anonymous.header("location").starts_with("/sign-in"));
    let mut fields = group.to_vec();
    fields.push(("csrf", &csrf));
    let cross_site = person
        .send(
            person
                .http
                .post(format!("{}/groups", person.base))
                .header("sec-fetch-site", "same-site")
                .form(&fields),
        )
        .await;
    assert_eq!(cross_site.status, 403, "{cross_site:?}");
    assert_eq!(
        site.env.state().tables,
        before,
        "a refused POST wrote something"
    );
    assert_eq!(group_in_store(&site.env, "Campaigns", "production"), None);
    assert_eq!(finished_runs(&site.env), 1, "no run was started");

    // The session's own token goes through: the group is in the store.
    let created = person.post("/groups", &fields).await;
    assert_eq!(created.status, 303, "{created:?}");
    assert_eq!(created.header("location"), "/groups/production/Campaigns");
    let doc = group_in_store(&site.env, "Campaigns", "production").expect("created");
    assert_eq!(doc["stage"], "production");
    let page = person.get("/groups/production/Campaigns").await;
    assert!(
        page.body
            .contains("Group &quot;Campaigns&quot; created in stage production."),
        "{}",
        page.body
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_response_carries_the_security_headers_and_loads_nothing_from_elsewhere() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);
    let anonymous = Person::at(&site);
    let csrf = person.sign_in().await;
    let run = person.post("/runs", &[("csrf", &csrf)]).await;
    let run_page = run.header("location").to_owned();
    assert!(run_page.starts_with("/runs/"), "{run:?}");
    let pages = [
        "/groups",
        "/groups?stage=qa&q=test",
        "/groups/new",
        "/groups/new?stage=production",
        "/groups/production/Marketing",
        "/groups/production/Marketing/users",
        "/groups/production/Marketing/delete",
        "/groups/production/Nowhere",
        "/users",
        "/users?key=ana%40example.com",
        "/mappings",
        "/runs",
        &run_page,
        "/runs/no-such-run",
        "/preview",
        "/refusals",
        "/audit?user=ana%40example.com",
    ];
    for path in pages {
        let answer = person.get(path).await;
        assert!([200, 404].contains(&answer.status), "{path}: {answer:?}");
        assert_security_headers(path, &answer);
        assert!(
            answer.header("content-type").starts_with("text/html"),
            "{path}"
        );
        assert!(
            answer.header("cache-control").contains("no-store"),
            "{path}"
        );
        assert!(answer.body.contains("<meta name=\"viewport\""), "{path}");
        assert!(
            answer.body.contains("href=\"/assets/console.css\""),
            "{path}"
        );
        for foreign in ["<script", " style=", "http://", "https://"] {
            assert!(!answer.body.contains(foreign), "{path} holds {foreign:?}");
        }
    }
    assert_eq!(person.get("/groups/production/Nowhere").await.status, 404);
    for path in ["/sign-in", "/assets/console.css", "/groups", "/"] {
        assert_security_headers(path, &anonymous.get(path).await);
    }
    let css = anonymous.get("/assets/console.css").await;
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, "text/css; charset=utf-8")
    );
    assert!(
        css.body.contains(":focus-visible") && css.body.contains("@media"),
        "focus and phone widths"
    );
    assert_security_headers("403", &person.post("/runs", &[("csrf", "x")]).await);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forms_name_what_is_refused_beside_the_field_and_keep_what_was_typed() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);
    let token = person.sign_in().await;
    let csrf = token.as_str();
    let create = |name: &str, role: &str| {
        [
            ("csrf", csrf),
            ("stage", "production"),
            ("name", name),
            ("description", "Typed text"),
            ("role", role),
        ]
        .map(|(k, v)| (k, v.to_owned()))
    };
    let created = person
        .post("/groups", &create("Campaigns", "Dash/Viewer"))
        .await;
    assert_eq!(created.status, 303, "{created:?}");
    let before = site.env.state().tables;

    // A duplicate name: 409, the message beside the name, what was typed kept.
    let duplicate = person
        .post("/groups", &create("campaigns", "Dash/Editor"))
        .await;
    assert_eq!(duplicate.status, 409, "{duplicate:?}");
    let error = between(&duplicate.body, "id=\"name-error\"", "</p>");
    assert!(
        error.contains("already exists in stage production"),
        "{error}"
    );
    assert!(
        duplicate.body.contains("aria-describedby=\"name-error\""),
        "{}",
        duplicate.body
    );
    assert!(
        duplicate.body.contains("value=\"campaigns\""),
        "the name typed is kept"
    );
    assert!(
        duplicate.body.contains(">Typed text</textarea>"),
        "the description typed is kept"
    );
    assert!(
        duplicate.body.contains("value=\"Dash/Editor\" checked"),
        "the role checked is kept"
    );
    // A role outside the [[app]] catalogue: 422 beside the roles.
    let unknown = person.post("/groups", &create("Ops", "Dash/Owner")).await;
    assert_eq!(unknown.status, 422, "{unknown:?}");
    assert!(
        between(&unknown.body, "id=\"roles-error\"", "</p>").contains("Dash/Owner"),
        "{}",
        unknown.body
    );
    // A declared group's roles change in the configuration, which the refusal names.
    let declared = person
        .post(
            "/groups/production/Marketing/roles",
            &[("csrf", csrf), ("role", "Dash/Editor")],
        )
        .await;
    assert_eq!(declared.status, 409, "{declared:?}");
    assert!(
        declared.body.contains("is declared in") && declared.body.contains("idpsync.toml"),
        "{}",
        declared.body
    );
    // A bad user key beside the user field; removing a user who is not a direct member.
    let users = "/groups/production/Campaigns/users";
    let bad_key = person
        .post(&format!("{users}/add"), &[("csrf", csrf), ("user", " ")])
        .await;
    assert_eq!(bad_key.status, 422, "{bad_key:?}");
    assert!(between(&bad_key.body, "id=\"user-error\"", "</p>").contains("must not be empty"));
    let not_direct = person
        .post(
            &format!("{users}/remove"),
            &[("csrf", csrf), ("user", "zed@example.com")],
        )
        .await;
    assert_eq!(not_direct.status, 409, "{not_direct:?}");
    assert_eq!(
        site.env.state().tables,
        before,
        "refused forms wrote something"
    );

    // Adding and removing direct members, each redirecting with a flash, in the store.
    for user in ["dana@example.com", "eli@example.com"] {
        let added = person
            .post(&format!("{users}/add"), &[("csrf", csrf), ("user", user)])
            .await;
        assert_eq!(
            (added.status, added.header("location")),
            (303, users),
            "{added:?}"
        );
    }
    let removed = person
        .post(
            &format!("{users}/remove"),
            &[("csrf", csrf), ("user", "eli@example.com")],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(
        person
            .get(users)
            .await
            .body
            .contains("Removed eli@example.com from the group.")
    );
    let doc = group_in_store(&site.env, "Campaigns", "production").unwrap();
    assert_eq!(
        doc["members"],
        json!([{"user": "dana@example.com", "provenance": ["direct"]}])
    );
    assert_eq!(doc["roles"], json!(["Dash/Viewer"]));

    // A delete with members is refused, naming how many remain; with the box checked it goes.
    let delete = "/groups/production/Campaigns/delete";
    let confirm = person.get(delete).await;
    assert!(
        confirm.body.contains("1 member<") && confirm.body.contains("Dash/Viewer"),
        "{}",
        confirm.body
    );
    assert!(
        confirm.body.contains("name=\"members\" value=\"1\""),
        "{}",
        confirm.body
    );
    let refused = person.post(delete, &[("csrf", csrf)]).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused.body.contains("still has 1 member."),
        "{}",
        refused.body
    );
    assert!(group_in_store(&site.env, "Campaigns", "production").is_some());
    // A member added after the confirmation was shown: nothing deleted, the new list shown.
    let add = "groups add-user Campaigns --stage production gus@example.com";
    let added = site.env.run(&add.split(' ').collect::<Vec<_>>());
    assert_eq!(added.code, 0, "{added:?}");
    let shown_one = [("csrf", csrf), ("members", "1"), ("remove_members", "true")];
    let changed = person.post(delete, &shown_one).await;
    assert_eq!(changed.status, 409, "{changed:?}");
    assert!(
        changed.body.contains(
            "members changed since this page was shown: 2 now. Look again before deleting."
        ) && changed.body.contains("gus@example.com")
            && changed.body.contains("name=\"members\" value=\"2\""),
        "{}",
        changed.body
    );
    let doc = group_in_store(&site.env, "Campaigns", "production").expect("not deleted");
    assert_eq!(doc["members"].as_array().unwrap().len(), 2, "{doc}");
    let deleted = person
        .post(
            delete,
            &[("csrf", csrf), ("members", "2"), ("remove_members", "true")],
        )
        .await;
    assert_eq!(
        (deleted.status, deleted.header("location")),
        (303, "/groups?stage=production")
    );
    assert_eq!(group_in_store(&site.env, "Campaigns", "production"), None);
    let list = person.get("/groups?stage=production").await;
    assert!(
        list.body.contains("Its 2 members were removed."),
        "{}",
        list.body
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_group_names_stay_in_their_path_segment_and_are_shown_escaped() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);
    let token = person.sign_in().await;
    let csrf = token.as_str();
    for (name, path) in [
        ("Sales/EU & Co", "/groups/qa/Sales%2FEU%20%26%20Co"),
        ("<b>Ärzte</b>", "/groups/qa/%3Cb%3E%C3%84rzte%3C%2Fb%3E"),
    ] {
        let fields = [("csrf", csrf), ("stage", "qa"), ("name", name)];
        let created = person.post("/groups", &fields).await;
        assert_eq!(
            (created.status, created.header("location")),
            (303, path),
            "{created:?}"
        );
        let users = format!("{path}/users");
        let added = person
            .post(
                &format!("{users}/add"),
                &[("csrf", csrf), ("user", "fay@example.com")],
            )
            .await;
        assert_eq!(
            (added.status, added.header("location")),
            (303, users.as_str())
        );
        let page = person.get(&users).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert!(page.body.contains("fay@example.com"), "{}", page.body);
        let doc = group_in_store(&site.env, name, "qa").expect("created");
        assert_eq!(doc["members"][0]["user"], "fay@example.com");
    }
    let list = person.get("/groups?stage=qa").await;
    assert!(
        list.body.contains("&lt;b&gt;Ärzte&lt;/b&gt;"),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains("<b>Ärzte"),
        "a name is text, never markup"
    );
    assert!(list.body.contains("Sales/EU &amp; Co"), "{}", list.body);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_reads_no_form_past_64_kib_and_a_larger_sign_in_opens_no_session() {
    let site = Site::start(console_env("")).await;
    let mut person = Person::at(&site);
    let padding = "x".repeat(64 * 1024);
    let sign_in = person
        .post_raw("/sign-in", format!("token={ADMIN_TOKEN}&pad={padding}"))
        .await;
    assert_eq!(sign_in.status, 413, "{sign_in:?}");
    assert!(sign_in.headers.get(SET_COOKIE).is_none(), "{sign_in:?}");
    assert!(sign_in.body.contains("nobody was signed in"), "{sign_in:?}");
    assert_security_headers("413", &sign_in);

    let csrf = person.sign_in().await;
    let before = site.env.state().tables;
    let fields = format!("csrf={csrf}&stage=qa&name=Big&description={padding}");
    let create = person.post_raw("/groups", fields).await;
    assert_eq!(create.status, 413, "{create:?}");
    assert_eq!(site.env.state().tables, before, "a refused POST wrote");
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_serves_only_daemon_stages_and_reads_a_textarea_s_crlf_as_newlines() {
    // A group of stage development stored, then development dropped from daemon.stages.
    let env =
        console_env("\n[[group]]\nname = \"Docs\"\nstage = \"qa\"\ndescription = \"One\\nTwo\"\n");
    let created = env.run(&["groups", "create", "Old", "--stage", "development"]);
    assert_eq!(created.code, 0, "{created:?}");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replacen(
        "[daemon]\n",
        "[daemon]\nstages = [\"qa\", \"production\"]\n",
        1,
    ));
    let site = Site::start(env).await;
    let mut person = Person::at(&site);
    let token = person.sign_in().await;
    let csrf = token.as_str();
    for path in [
        "/groups/development/Old",
        "/groups/development/Old/users",
        "/groups/development/Old/delete",
    ] {
        assert_eq!(person.get(path).await.status, 404, "{path}");
    }
    let rename = [("csrf", csrf), ("name", "Older")];
    let edit = person.post("/groups/development/Old", &rename).await;
    assert_eq!(edit.status, 404, "{edit:?}");
    let before = site.env.state().tables;
    for stage in ["development", ""] {
        let fields = [("csrf", csrf), ("stage", stage), ("name", "New")];
        let refused = person.post("/groups", &fields).await;
        assert_eq!(refused.status, 422, "{stage:?}: {refused:?}");
        let error = between(&refused.body, "id=\"stage-error\"", "</p>");
        assert!(error.contains("not one of daemon.stages"), "{error}");
        assert!(refused.body.contains("value=\"New\""), "the name is kept");
    }
    assert_eq!(site.env.state().tables, before, "a refused create wrote");

    // A declared group's multi-line description sent back as a browser sends it: unchanged.
    let docs = [
        ("csrf", csrf),
        ("name", "Docs"),
        ("description", "One\r\nTwo"),
    ];
    let unchanged = person.post("/groups/qa/Docs", &docs).await;
    assert_eq!(unchanged.status, 303, "{unchanged:?}");
    let page = person.get("/groups/qa/Docs").await;
    assert!(page.body.contains("Nothing changed."), "{}", page.body);
    // A group created with CRLF stores newlines; the same text sent again changes nothing.
    let notes = [("csrf", csrf), ("stage", "qa"), ("name", "Notes")];
    let created = person
        .post(
            "/groups",
            &[&notes[..], &[("description", "A\r\nB\rC")]].concat(),
        )
        .await;
    assert_eq!(created.status, 303, "{created:?}");
    let stored = || group_in_store(&site.env, "Notes", "qa").unwrap()["description"].clone();
    assert_eq!(stored(), "A\nB\nC");
    let again = [
        ("csrf", csrf),
        ("name", "Notes"),
        ("description", "A\r\nB\nC"),
    ];
    assert_eq!(person.post("/groups/qa/Notes", &again).await.status, 303);
    let page = person.get("/groups/qa/Notes").await;
    assert!(page.body.contains("Nothing changed."), "{}", page.body);
    assert_eq!(stored(), "A\nB\nC");
    site.stop().await;
}
