//! The console's portal flows in headless Chromium: sign in, create a group, add roles, add a
//! direct user, run a reconcile and see the mapped users appear with their IdP badge, rename,
//! try to delete with members (the count and the roles they would lose), delete, approve a
//! refusal — each write checked in the store through the CLI — and the screenshots of
//! `docs/screenshots/` taken on the way, one at phone width.

use serde_json::json;

use crate::browser::{Browser, LAPTOP, PHONE};
use crate::console_site::{ADMIN_TOKEN, Site, console_env, export, group_in_store};

/// The `(user, provenances)` of a `groups show` document.
fn members(doc: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let provenance = m["provenance"].as_array().unwrap();
            (
                m["user"].as_str().unwrap().to_owned(),
                provenance
                    .iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Clicks "Run now" on the Runs page and waits on the run's page until it has finished.
async fn run_now(browser: &Browser, site: &Site) -> String {
    browser.goto(&format!("{}/runs", site.base)).await;
    browser.click("#run-now").await;
    browser
        .find_text("//p[@role='status']", "Run started.")
        .await;
    // The page reloads itself until the run is done.
    let status = browser.find("#run-status[data-state='finished']").await;
    status.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_does_the_portal_flows_in_headless_chromium() {
    // At most one removal per run: the refusal at the end.
    let site = Site::start(console_env("\n[safety]\nmax_removals = 1\n")).await;
    let base = site.base.clone();
    let browser = Browser::start().await;

    // Sign in: a wrong token is refused beside the field; the right one opens the page asked for.
    browser
        .goto(&format!("{base}/groups?stage=production"))
        .await;
    browser.find("#token").await;
    assert_eq!(browser.url().await.path(), "/sign-in");
    browser.screenshot("sign-in").await;
    browser.fill("#token", "not-the-token").await;
    browser.click("button[type='submit']").await;
    browser
        .find_text("//p[@id='token-error']", "not the admin token")
        .await;
    browser.fill("#token", ADMIN_TOKEN).await;
    browser.click("button[type='submit']").await;
    browser.find_text("//h1", "End-user groups").await;
    assert_eq!(browser.url().await.query(), Some("stage=production"));
    browser.find_text("//table//a", "Marketing").await;

    // The keyboard reaches the skip link first, then the navigation.
    browser.press_tab().await;
    assert_eq!(
        browser.focused().await.text().await.unwrap(),
        "Skip to content"
    );
    browser.press_tab().await;
    browser.press_tab().await;
    assert_eq!(browser.focused().await.text().await.unwrap(), "Groups");

    // The mapping to a group not created yet is inactive, and offers to create it.
    browser.goto(&format!("{base}/mappings")).await;
    let create = browser
        .find_text(
            "//table[@id='mappings']//tr[contains(., 'g-camp')]//a",
            "Create it",
        )
        .await;
    assert_eq!(
        create.attr("href").await.unwrap().as_deref(),
        Some("/groups/new?stage=production&name=Campaigns")
    );
    browser
        .goto(&format!("{base}/groups?stage=production"))
        .await;

    // Create a group: the stage is the one chosen, shown read-only.
    browser
        .click("a.button[href='/groups/new?stage=production']")
        .await;
    assert_eq!(
        browser.find("#stage").await.text().await.unwrap(),
        "production"
    );
    assert!(browser.evaluate("return document.querySelectorAll('input[name=stage][type=text], select[name=stage]').length").await == json!(0));
    browser.fill("#name", "Campaigns").await;
    browser.fill("#description", "The campaign crew").await;
    browser
        .click("form[action='/groups'] button[type='submit']")
        .await;
    browser
        .find_text(
            "//p[@role='status']",
            "Group \"Campaigns\" created in stage production.",
        )
        .await;

    // Add roles on its General tab.
    browser
        .click("input[name='role'][value='Dash/Editor']")
        .await;
    browser
        .click("form[action$='/roles'] button[type='submit']")
        .await;
    browser
        .find_text("//p[@role='status']", "Roles saved: Dash/Editor.")
        .await;
    let doc = group_in_store(&site.env, "Campaigns", "production").expect("created");
    assert_eq!(
        (&doc["description"], &doc["roles"]),
        (&json!("The campaign crew"), &json!(["Dash/Editor"]))
    );

    // Add a direct user on the Users tab.
    browser.click("ul.tabs a[href$='/users']").await;
    browser.fill("#user", "dana@example.com").await;
    browser.click("form[action$='/users/add'] button").await;
    browser
        .find_text(
            "//p[@role='status']",
            "Added dana@example.com as a direct member.",
        )
        .await;
    browser
        .find_text("//tr[@data-user='dana@example.com']//span", "Direct")
        .await;

    // A reconcile brings the mapped IdP group's members in, shown read-only as Mapped.
    let finished = run_now(&browser, &site).await;
    assert!(finished.contains("applied"), "{finished}");
    browser
        .find_text("//table[@id='adds']//td", "Campaigns")
        .await;
    browser
        .goto(&format!("{base}/groups/production/Campaigns/users"))
        .await;
    for mapped in ["ana@example.com", "cid@example.com"] {
        let badge = browser
            .find(&format!("tr[data-user='{mapped}'] .badge.mapped"))
            .await;
        assert_eq!(badge.text().await.unwrap(), "Mapped · corp");
        browser
            .find_text(
                &format!("//tr[@data-user='{mapped}']/td"),
                "Managed by the IdP",
            )
            .await;
        let remove = format!("tr[data-user='{mapped}'] form");
        assert_eq!(
            browser.count(&remove).await,
            0,
            "a mapped member has no Remove button"
        );
    }
    browser
        .find("tr[data-user='dana@example.com'] form[action$='/users/remove'] button")
        .await;
    browser.screenshot("group-users").await;
    browser
        .goto(&format!("{base}/groups?stage=production"))
        .await;
    browser
        .find_text("//table//tr[contains(., 'Campaigns')]/td", "3")
        .await;
    browser.screenshot("groups").await;
    browser
        .goto(&format!("{base}/groups/production/Campaigns/users"))
        .await;
    assert_eq!(
        members(&group_in_store(&site.env, "Campaigns", "production").unwrap()),
        [
            ("ana@example.com".to_owned(), vec!["idp:corp".to_owned()]),
            ("cid@example.com".to_owned(), vec!["idp:corp".to_owned()]),
            ("dana@example.com".to_owned(), vec!["direct".to_owned()]),
        ]
    );

    // Rename it.
    browser.click("ul.tabs li:first-child a").await;
    browser.fill("#name", "Campaigns EU").await;
    browser
        .click("form[action='/groups/production/Campaigns'] button[type='submit']")
        .await;
    browser
        .find_text(
            "//p[@role='status']",
            "Renamed \"Campaigns\" to \"Campaigns EU\".",
        )
        .await;
    assert_eq!(
        browser.url().await.path(),
        "/groups/production/Campaigns%20EU"
    );
    assert!(group_in_store(&site.env, "Campaigns", "production").is_none());
    assert_eq!(
        members(&group_in_store(&site.env, "Campaigns EU", "production").unwrap()).len(),
        3
    );

    // Delete: the members question first, with the roles each would lose.
    browser.click("a.button.danger").await;
    browser
        .find_text("//p[@id='members-question']", "The group has 3 members")
        .await;
    for user in ["ana@example.com", "cid@example.com", "dana@example.com"] {
        let row = browser
            .find_text("//table[@id='lost-roles']//tr", user)
            .await;
        assert!(
            row.text().await.unwrap().contains("Dash/Editor"),
            "{user} loses Dash/Editor"
        );
    }
    browser.screenshot("delete-confirm").await;
    browser.click("button.danger").await;
    browser
        .find_text("//p[@role='alert']", "the group still has 3 members.")
        .await;
    assert!(
        group_in_store(&site.env, "Campaigns EU", "production").is_some(),
        "refused"
    );
    browser.click("#remove_members").await;
    browser.click("button.danger").await;
    browser
        .find_text(
            "//p[@role='status']",
            "Group \"Campaigns EU\" deleted from stage production. Its 3 members were removed.",
        )
        .await;
    assert!(group_in_store(&site.env, "Campaigns EU", "production").is_none());

    // Its mapping is now inactive, and says why.
    browser.goto(&format!("{base}/mappings")).await;
    let row = browser
        .find_text("//table[@id='mappings']//tr", "g-camp")
        .await;
    let row = row.text().await.unwrap();
    assert!(
        row.contains("inactive") && row.contains("group_not_found"),
        "{row}"
    );
    browser
        .find_text("//table[@id='mappings']//tr", "Marketing Team")
        .await;
    browser.screenshot("mappings").await;

    // A read that removes two memberships, over max_removals: the run is refused...
    let mut shrunk = export();
    shrunk["groups"][0]["members"] = json!(["u2", "u4"]);
    shrunk["groups"][1]["members"] = json!(["u2"]);
    site.env.write_export("corp.json", &shrunk);
    let finished = run_now(&browser, &site).await;
    assert!(finished.contains("refused"), "{finished}");
    browser
        .find_text("//table[@id='refused']//tr", "--allow-removals 2")
        .await;
    browser.goto(&format!("{base}/preview")).await;
    browser
        .find_text("//table[@id='refused']//tr", "removals")
        .await;
    browser.screenshot("preview").await;
    let marketing = |env| members(&group_in_store(env, "Marketing", "production").unwrap());
    assert!(
        marketing(&site.env)
            .iter()
            .any(|(u, _)| u == "ana@example.com"),
        "nothing removed"
    );

    // ...until approved: the allowing run goes, and the refusal is resolved.
    browser.goto(&format!("{base}/refusals")).await;
    browser
        .find_text("//section[@data-idp='corp']", "--allow-removals 2")
        .await;
    browser.screenshot("refusals").await;
    browser
        .click("section[data-idp='corp'] button[type='submit']")
        .await;
    browser
        .find_text("//p[@role='status']", "Approved the refusal of IdP corp")
        .await;
    let done = browser.find("#run-status[data-state='finished']").await;
    assert!(
        done.text().await.unwrap().contains("applied"),
        "the approval applies"
    );
    assert_eq!(
        browser.find("#removes-count").await.text().await.unwrap(),
        "2"
    );
    assert!(
        !marketing(&site.env)
            .iter()
            .any(|(u, _)| u == "ana@example.com"),
        "ana removed"
    );
    browser.goto(&format!("{base}/refusals")).await;
    browser
        .find_text("//p[@id='no-refusals']", "No refusal is pending.")
        .await;
    browser.goto(&format!("{base}/runs")).await;
    browser.find_text("//table[@id='runs']//td", "api").await;
    browser.screenshot("runs").await;

    // Search by user: groups and effective roles.
    browser.goto(&format!("{base}/users")).await;
    browser.fill("#key", "Ben@Example.com").await;
    browser.click("form[action='/users'] button").await;
    browser
        .find_text("//h2[@id='user-heading']", "ben@example.com")
        .await;
    browser
        .find_text("//table[@id='user-groups']//tr", "Marketing")
        .await;
    browser.find_text("//dl//dd", "Viewer").await;

    // Legible at phone width: nothing wider than the screen.
    browser.resize(PHONE).await;
    browser
        .goto(&format!("{base}/groups/production/Marketing/users"))
        .await;
    browser
        .find("tr[data-user='ben@example.com'] .badge.mapped")
        .await;
    let overflow = browser
        .evaluate(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
    assert_eq!(
        overflow,
        json!(0),
        "the page scrolls sideways at phone width"
    );
    browser.screenshot("phone-group-users").await;
    browser.resize(LAPTOP).await;

    // Signing out ends the session: the next page asks to sign in again.
    browser.click("form.sign-out button").await;
    browser
        .find_text("//p[@role='status']", "You are signed out.")
        .await;
    browser.goto(&format!("{base}/groups")).await;
    browser.find("#token").await;
    browser.close().await;
    site.stop().await;
}
