//! Paging: group and member PageBeans, `maxResults` clamped, `nextPage` followed, 10,000 members.

use reqwest::Method;

use super::{Client, EMAIL, TOKEN};
use crate::jira::FakeJira;

#[tokio::test]
async fn group_pages_clamp_to_fifty_and_link_the_next() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    for i in 0..60 {
        jira.add_group(&format!("g{i:02}"));
    }
    let c = Client::new(&jira);
    let first = c.get("/rest/api/3/group/bulk?maxResults=500").await;
    assert_eq!(first.body["maxResults"], 50);
    assert_eq!(first.body["values"].as_array().map(Vec::len), Some(50));
    assert_eq!(
        (first.body["total"].as_u64(), first.body["isLast"].as_bool()),
        (Some(60), Some(false))
    );
    let next = first.body["nextPage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let second = c.get(&next).await;
    assert_eq!(second.body["startAt"], 50);
    assert_eq!(second.body["values"][0]["name"], "g50");
    assert_eq!(second.body["isLast"], true);
    assert!(second.body.get("nextPage").is_none());
    assert_eq!(
        c.get("/rest/api/3/group/bulk?maxResults=0").await.status,
        400
    );
    assert_eq!(c.get("/rest/api/3/group/bulk?startAt=-1").await.status, 400);
}

#[tokio::test]
async fn member_pages_hide_inactive_users_and_hidden_emails() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let id = jira.add_group("Staff");
    let emails: Vec<String> = (0..120)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    jira.add_users(&emails);
    jira.add_members("Staff", &emails);
    jira.set_active("user005@example.com", false);
    jira.add_user_hidden_email("zed.hidden@example.com");
    jira.add_member("Staff", "zed.hidden@example.com");
    let c = Client::new(&jira);
    let mut url = format!("/rest/api/3/group/member?groupId={id}&maxResults=200");
    let mut seen = Vec::new();
    let mut hidden = 0;
    loop {
        let page = c.get(&url).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["maxResults"], 50);
        assert_eq!(page.body["total"], 120);
        for u in page.body["values"].as_array().into_iter().flatten() {
            assert_eq!(u["accountType"], "atlassian");
            match u["emailAddress"].as_str() {
                Some(e) => seen.push(e.to_owned()),
                None => hidden += 1,
            }
        }
        if page.body["isLast"] == true {
            break;
        }
        url = page.body["nextPage"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    assert_eq!((seen.len(), hidden), (119, 1));
    assert!(!seen.contains(&"user005@example.com".to_owned()));
    assert_eq!(jira.counts().member_pages, 3);
    let all = c
        .get(&format!(
            "/rest/api/3/group/member?groupId={id}&includeInactiveUsers=true"
        ))
        .await;
    assert_eq!(all.body["total"], 121);
    assert!(
        all.body["nextPage"]
            .as_str()
            .unwrap_or_default()
            .contains("includeInactiveUsers=true")
    );
    let by_name = c.get("/rest/api/3/group/member?groupname=staff").await;
    assert_eq!(by_name.body["total"], 120);
    assert_eq!(
        c.get("/rest/api/3/group/member?groupId=nope").await.status,
        404
    );
    assert_eq!(
        c.get(&format!(
            "/rest/api/3/group/member?groupId={id}&groupname=Staff"
        ))
        .await
        .status,
        400
    );
    assert_eq!(c.get("/rest/api/3/group/member").await.status, 400);
    assert_eq!(jira.members_of("Staff").len(), 121);
}

#[tokio::test]
async fn ten_thousand_members_seed_fast_and_page_by_offset() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let started = std::time::Instant::now();
    let emails: Vec<String> = (0..10_000)
        .map(|i| format!("user{i:05}@example.com"))
        .collect();
    let ids = jira.add_users(&emails);
    let gid = jira.add_group("Everyone");
    assert_eq!(jira.add_members("Everyone", &emails), 10_000);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(ids.len(), 10_000);
    let c = Client::new(&jira);
    let last = c
        .get(&format!(
            "/rest/api/3/group/member?groupId={gid}&startAt=9990"
        ))
        .await;
    assert_eq!(last.body["total"], 10_000);
    assert_eq!(last.body["values"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        last.body["values"][9]["emailAddress"],
        "user09999@example.com"
    );
    assert_eq!(last.body["isLast"], true);
    assert_eq!(jira.members_of("Everyone").len(), 10_000);
    let stats = c.send(Method::GET, "/_fake/stats", None, None).await;
    assert_eq!(stats.body["member_pages"], 1);
}
