//! Limits and switches: forced 429s and 503s, refused writes, the burst budget.

use serde_json::json;

use super::{Client, EMAIL, TOKEN};
use crate::jira::FakeJira;

#[tokio::test]
async fn forced_429s_and_503s_then_recovery() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let c = Client::new(&jira);
    jira.throttle_next(2, 0);
    for _ in 0..2 {
        let r = c.get("/rest/api/3/group/bulk").await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("0"));
        assert_eq!(r.header("ratelimit-reason"), Some("jira-burst-based"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        assert!(
            r.header("x-ratelimit-reset")
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
    assert_eq!(c.get("/rest/api/3/group/bulk").await.status, 200);
    jira.busy_next(1, Some(3));
    let busy = c.get("/rest/api/3/group/bulk").await;
    assert_eq!((busy.status, busy.header("retry-after")), (503, Some("3")));
    jira.busy_next(1, None);
    let busy = c.get("/rest/api/3/group/bulk").await;
    assert_eq!((busy.status, busy.header("retry-after")), (503, None));
    jira.throttle_next(1, 7);
    assert_eq!(
        c.get("/rest/api/3/group/bulk").await.header("retry-after"),
        Some("7")
    );
    assert_eq!(c.get("/rest/api/3/group/bulk").await.status, 200);
    let counts = jira.counts();
    assert_eq!(
        (
            counts.throttled,
            counts.over_limit,
            counts.busy,
            counts.early_retries
        ),
        (3, 0, 2, 1)
    );
    assert_eq!(counts.group_lookups, 2);
}

#[tokio::test]
async fn writes_can_be_refused_while_reads_pass() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let c = Client::new(&jira);
    jira.reject_writes(2);
    let refused = c.post("/rest/api/3/group", json!({"name": "A"})).await;
    assert_eq!(refused.status, 403);
    assert!(refused.message().contains("permission"));
    assert_eq!(c.get("/rest/api/3/group/bulk").await.status, 200);
    assert_eq!(
        c.delete("/rest/api/3/group/user?groupId=x&accountId=y")
            .await
            .status,
        403
    );
    assert_eq!(
        c.post("/rest/api/3/group", json!({"name": "A"}))
            .await
            .status,
        201
    );
    assert_eq!(jira.counts().rejected_writes, 2);
    assert_eq!(jira.group_names(), vec!["A"]);
}

#[tokio::test]
async fn the_burst_budget_answers_429_with_jira_headers() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    // A ten-year window: no boundary falls inside the test.
    jira.set_rate_limit(10, 315_360_000_000);
    jira.switch(|s| s.retry_after_secs = 2);
    let c = Client::new(&jira);
    for i in 1..=10u64 {
        let r = c.get("/rest/api/3/group/bulk").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((10 - i).to_string().as_str())
        );
        assert_eq!(
            r.header("x-ratelimit-nearlimit").is_some(),
            i >= 9,
            "request {i}"
        );
    }
    let over = c.get("/rest/api/3/group/bulk").await;
    assert_eq!(over.status, 429);
    assert_eq!(over.header("retry-after"), Some("2"));
    assert_eq!(over.header("ratelimit-reason"), Some("jira-burst-based"));
    assert_eq!(over.header("x-ratelimit-nearlimit"), Some("true"));
    assert_eq!(over.message(), "Rate limit exceeded.");
    assert_eq!(c.get("/rest/api/3/group/bulk").await.status, 429);
    let counts = jira.counts();
    assert_eq!(
        (
            counts.over_limit,
            counts.early_retries,
            counts.busiest_window
        ),
        (2, 1, 12)
    );
    jira.set_rate_limit(100, 1000);
    assert_eq!(c.get("/rest/api/3/group/bulk").await.status, 200);
}
