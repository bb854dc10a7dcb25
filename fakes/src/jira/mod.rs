//! A fake Jira Cloud site: the REST API v3 group and user endpoints idpsync pushes through, as
//! reference/targets.md §3.1 describes them.
//!
//! Enforced as Jira does: HTTP Basic `email:api_token` on every call (401 `ErrorCollection`
//! otherwise); `maxResults` clamped to 50 on group pages, PageBeans with `isLast`/`nextPage`;
//! groups identified by UUID `groupId`, names unique case-insensitively; one user per add or
//! remove call, an add of a member answered 400, a remove of a non-member 404; `emailAddress`
//! left out for users who hide it; inactive members hidden unless `includeInactiveUsers=true`;
//! a per-window burst budget answered 429 `RateLimit-Reason: jira-burst-based` with
//! `Retry-After`, and `X-RateLimit-*` headers on every response. Switches force 429s, 503s and
//! 403 write rejections; counters record what was sent.

mod api;
mod gate;
mod site;
#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};

use crate::server::{Running, serve_with_state};
use gate::{Counters, State, Window};

/// Behaviours a test switches on, at start or at run time through [`FakeJira::switch`].
#[derive(Debug, Clone)]
pub struct Switches {
    /// Requests allowed per burst window (default 100).
    pub rate_limit: u64,
    /// The burst window, milliseconds (default 1000). Windows are aligned to the epoch.
    pub window_ms: u64,
    /// `Retry-After` seconds on every 429, burst or forced (default 1; 0 is sent as `0`).
    pub retry_after_secs: u64,
    /// Answer this many coming authenticated requests with 429 (budget untouched by the switch).
    pub throttle_next: u32,
    /// Answer this many coming authenticated requests with 503 (checked before `throttle_next`).
    pub busy_next: u32,
    /// `Retry-After` seconds on those 503s; `None` sends none (default `Some(1)`).
    pub busy_retry_after: Option<u64>,
    /// Refuse this many coming writes (create group, add user, remove user) with 403.
    pub reject_writes: u32,
    /// The most items a group or member page holds, whatever `maxResults` asks (default 50;
    /// values above 50 act as 50).
    pub page_cap: usize,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            rate_limit: 100,
            window_ms: 1000,
            retry_after_secs: 1,
            throttle_next: 0,
            busy_next: 0,
            busy_retry_after: Some(1),
            reject_writes: 0,
            page_cap: 50,
        }
    }
}

/// A snapshot of what the fake has been sent (also served, unauthenticated, as JSON at
/// `GET /_fake/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Every request to the API, refused or not.
    pub requests: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// `GET /rest/api/3/group/bulk` calls that passed the gate.
    pub group_lookups: u64,
    /// `POST /rest/api/3/group` calls that passed the gate (403-rejected ones included).
    pub group_creates: u64,
    /// `GET /rest/api/3/group/member` pages that passed the gate.
    pub member_pages: u64,
    /// `POST /rest/api/3/group/user` calls that passed the gate (403-rejected ones included).
    pub add_user: u64,
    /// `DELETE /rest/api/3/group/user` calls that passed the gate (403-rejected ones included).
    pub remove_user: u64,
    /// `GET /rest/api/3/user/search` calls that passed the gate.
    pub user_searches: u64,
    /// 429s sent, forced and burst.
    pub throttled: u64,
    /// 429s sent because the burst budget was spent.
    pub over_limit: u64,
    /// 503s sent.
    pub busy: u64,
    /// Writes refused with 403 by the `reject_writes` switch.
    pub rejected_writes: u64,
    /// Requests that arrived before the `Retry-After` of the last 429 had elapsed.
    pub early_retries: u64,
    /// The most requests one burst window saw.
    pub busiest_window: u64,
}

/// A running fake Jira Cloud site; stops when dropped.
pub struct FakeJira {
    server: Running,
    state: Arc<State>,
}

impl FakeJira {
    /// Serves an empty site accepting HTTP Basic `email:api_token`, default switches.
    pub fn start(email: &str, api_token: &str) -> FakeJira {
        Self::start_with(email, api_token, Switches::default())
    }

    /// Serves an empty site accepting HTTP Basic `email:api_token`, with `switches`.
    pub fn start_with(email: &str, api_token: &str, switches: Switches) -> FakeJira {
        let credential = format!("{email}:{api_token}");
        let state = move |base| State {
            base,
            credential,
            switches: Mutex::new(switches),
            counters: Counters::default(),
            window: Mutex::new(Window::default()),
            site: Mutex::new(site::Site::default()),
            retry_not_before: Mutex::new(None),
        };
        let (server, state) = serve_with_state(None, state, router);
        FakeJira { server, state }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn site_url(&self) -> String {
        self.server.url()
    }

    /// Changes the switches while running.
    pub fn switch(&self, change: impl FnOnce(&mut Switches)) {
        change(&mut self.state.lock_switches());
    }

    /// Answers the next `n` requests with 429 and `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.switch(|s| {
            s.throttle_next = n;
            s.retry_after_secs = retry_after_secs;
        });
    }

    /// Answers the next `n` requests with 503, with `Retry-After` when `retry_after` is given.
    pub fn busy_next(&self, n: u32, retry_after: Option<u64>) {
        self.switch(|s| {
            s.busy_next = n;
            s.busy_retry_after = retry_after;
        });
    }

    /// Refuses the next `n` writes with 403.
    pub fn reject_writes(&self, n: u32) {
        self.switch(|s| s.reject_writes = n);
    }

    /// Sets the burst budget: `limit` requests per `window_ms` milliseconds.
    pub fn set_rate_limit(&self, limit: u64, window_ms: u64) {
        self.switch(|s| {
            s.rate_limit = limit;
            s.window_ms = window_ms;
        });
    }

    /// What the fake has been sent so far.
    pub fn counts(&self) -> Counts {
        snapshot(&self.state.counters)
    }

    /// Adds an active user whose display name comes from the e-mail's local part
    /// (`alice.smith@x` → `Alice Smith`); returns its `accountId`. An existing e-mail
    /// (case-insensitive) returns the existing account unchanged.
    pub fn add_user(&self, email: &str) -> String {
        let mut site = self.state.lock_site();
        let i = site.add_user(email, None, false);
        site.users[i].account_id.clone()
    }

    /// As [`FakeJira::add_user`], with the given display name.
    pub fn add_user_named(&self, email: &str, display_name: &str) -> String {
        let mut site = self.state.lock_site();
        let i = site.add_user(email, Some(display_name), false);
        site.users[i].account_id.clone()
    }

    /// As [`FakeJira::add_user`], for a user who hides their e-mail: searches still find them
    /// (by display name or e-mail) but never with `emailAddress`, nor do member pages.
    pub fn add_user_hidden_email(&self, email: &str) -> String {
        let mut site = self.state.lock_site();
        let i = site.add_user(email, None, true);
        site.users[i].account_id.clone()
    }

    /// Adds many users under one lock (10,000 in milliseconds); their `accountId`s in order.
    pub fn add_users<S: AsRef<str>>(&self, emails: impl IntoIterator<Item = S>) -> Vec<String> {
        let mut site = self.state.lock_site();
        emails
            .into_iter()
            .map(|e| {
                let i = site.add_user(e.as_ref(), None, false);
                site.users[i].account_id.clone()
            })
            .collect()
    }

    /// Marks a user active or inactive. Panics on an unknown e-mail.
    pub fn set_active(&self, email: &str, active: bool) {
        let mut site = self.state.lock_site();
        let i = site
            .user_by_email(email)
            .unwrap_or_else(|| panic!("no Jira user {email}"));
        site.users[i].active = active;
    }

    /// The `accountId` of the user with this e-mail (case-insensitive).
    pub fn account_id(&self, email: &str) -> Option<String> {
        let site = self.state.lock_site();
        site.user_by_email(email)
            .map(|i| site.users[i].account_id.clone())
    }

    /// Adds a group (or finds the one with that name, case-insensitively); returns its `groupId`.
    pub fn add_group(&self, name: &str) -> String {
        let mut site = self.state.lock_site();
        let g = site.add_group(name);
        site.groups[g]
            .as_ref()
            .map(|g| g.id.clone())
            .unwrap_or_default()
    }

    /// The `groupId` of the group with this name (case-insensitive).
    pub fn group_id(&self, name: &str) -> Option<String> {
        let site = self.state.lock_site();
        site.group_by_name(name)
            .and_then(|g| site.group(g))
            .map(|g| g.id.clone())
    }

    /// Every group's name, sorted case-insensitively.
    pub fn group_names(&self) -> Vec<String> {
        let site = self.state.lock_site();
        site.sorted_groups()
            .iter()
            .map(|g| g.name.clone())
            .collect()
    }

    fn indexes(site: &site::Site, group: &str, email: &str) -> (usize, usize) {
        let g = site
            .group_by_name(group)
            .unwrap_or_else(|| panic!("no Jira group {group}"));
        let u = site
            .user_by_email(email)
            .unwrap_or_else(|| panic!("no Jira user {email}"));
        (g, u)
    }

    /// Adds a member behind the client's back; false if it already was one. Panics on an
    /// unknown group name or e-mail.
    pub fn add_member(&self, group: &str, email: &str) -> bool {
        let mut site = self.state.lock_site();
        let (g, u) = Self::indexes(&site, group, email);
        site.add_member(g, u)
    }

    /// Adds many members under one lock; how many were new. Panics on an unknown name.
    pub fn add_members<S: AsRef<str>>(
        &self,
        group: &str,
        emails: impl IntoIterator<Item = S>,
    ) -> usize {
        let mut site = self.state.lock_site();
        let mut added = 0;
        for email in emails {
            let (g, u) = Self::indexes(&site, group, email.as_ref());
            added += usize::from(site.add_member(g, u));
        }
        added
    }

    /// Removes a member behind the client's back; false if it was not one. Panics on an
    /// unknown group name or e-mail.
    pub fn remove_member(&self, group: &str, email: &str) -> bool {
        let mut site = self.state.lock_site();
        let (g, u) = Self::indexes(&site, group, email);
        site.remove_member(g, u)
    }

    /// Renames a group, keeping its `groupId`. Panics on an unknown group or a taken name.
    pub fn rename_group(&self, old_name: &str, new_name: &str) {
        let mut site = self.state.lock_site();
        let g = site
            .group_by_name(old_name)
            .unwrap_or_else(|| panic!("no Jira group {old_name}"));
        assert!(
            site.rename_group(g, new_name),
            "Jira group name {new_name} is taken"
        );
    }

    /// Deletes a group behind the client's back; false if there was none by that name.
    pub fn delete_group(&self, name: &str) -> bool {
        let mut site = self.state.lock_site();
        site.group_by_name(name)
            .is_some_and(|g| site.delete_group(g))
    }

    /// The e-mails of a group's members (inactive and hidden-e-mail ones included), as seeded,
    /// sorted. Panics on an unknown group name.
    pub fn members_of(&self, group: &str) -> Vec<String> {
        let site = self.state.lock_site();
        let g = site
            .group_by_name(group)
            .and_then(|g| site.group(g))
            .unwrap_or_else(|| panic!("no Jira group {group}"));
        let mut emails: Vec<String> = g
            .members
            .iter()
            .map(|&(_, u)| site.users[u].email.clone())
            .collect();
        emails.sort();
        emails
    }
}

fn snapshot(c: &Counters) -> Counts {
    let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Counts {
        requests: r(&c.requests),
        unauthorized: r(&c.unauthorized),
        group_lookups: r(&c.group_lookups),
        group_creates: r(&c.group_creates),
        member_pages: r(&c.member_pages),
        add_user: r(&c.add_user),
        remove_user: r(&c.remove_user),
        user_searches: r(&c.user_searches),
        throttled: r(&c.throttled),
        over_limit: r(&c.over_limit),
        busy: r(&c.busy),
        rejected_writes: r(&c.rejected_writes),
        early_retries: r(&c.early_retries),
        busiest_window: r(&c.busiest_window),
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/rest/api/3/group", post(api::create_group))
        .route("/rest/api/3/group/bulk", get(api::bulk))
        .route("/rest/api/3/group/member", get(api::members))
        .route(
            "/rest/api/3/group/user",
            post(api::add_user).delete(api::remove_user),
        )
        .route("/rest/api/3/user/search", get(api::search))
        .route("/_fake/stats", get(api::stats))
        .with_state(state)
}
