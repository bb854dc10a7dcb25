//! The fake's counters: what it has been sent and what it answered.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the fake has been sent. Kind counters count requests that passed the gate (auth, rate
/// limit, switches) whatever the handler answered; `*_creates` and `member_changes` count effects.
#[derive(Debug, Default)]
pub struct Counts {
    /// Every request under `/api/identity/v1`, refused ones included (token requests not).
    pub requests: AtomicU64,
    /// Token requests, refused ones included.
    pub tokens: AtomicU64,
    /// Discovery document requests.
    pub discoveries: AtomicU64,
    /// Pages of `GET /groups` plus `GET /groups/{key}`.
    pub group_lookups: AtomicU64,
    /// Groups created by `POST /groups` (201s).
    pub group_creates: AtomicU64,
    /// `PATCH /groups/{key}` calls.
    pub group_updates: AtomicU64,
    /// `DELETE /groups/{key}` calls.
    pub group_deletes: AtomicU64,
    /// Pages of `GET /groups/{key}/users`.
    pub member_pages: AtomicU64,
    /// `PATCH /groups/{key}/users` calls.
    pub patch_users: AtomicU64,
    /// Assigned memberships added or removed by PATCH (no-ops not counted).
    pub member_changes: AtomicU64,
    /// Pages of `GET /users`.
    pub user_pages: AtomicU64,
    /// Users created by `POST /users` (201s).
    pub user_creates: AtomicU64,
    /// 429s sent, rate limit and forced.
    pub throttled: AtomicU64,
    /// 429s sent because the rate limit was exceeded.
    pub over_limit: AtomicU64,
    /// 503s sent on API calls.
    pub busy: AtomicU64,
    /// 401s sent on API calls.
    pub unauthorized: AtomicU64,
    /// Writes refused by `reject_writes`.
    pub rejected_writes: AtomicU64,
}

/// Reads one counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A snapshot of [`Counts`], field for field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every request under `/api/identity/v1`, refused ones included (token requests not).
    pub requests: u64,
    /// Token requests, refused ones included.
    pub tokens: u64,
    /// Discovery document requests.
    pub discoveries: u64,
    /// Pages of `GET /groups` plus `GET /groups/{key}`.
    pub group_lookups: u64,
    /// Groups created by `POST /groups` (201s).
    pub group_creates: u64,
    /// `PATCH /groups/{key}` calls.
    pub group_updates: u64,
    /// `DELETE /groups/{key}` calls.
    pub group_deletes: u64,
    /// Pages of `GET /groups/{key}/users`.
    pub member_pages: u64,
    /// `PATCH /groups/{key}/users` calls.
    pub patch_users: u64,
    /// Assigned memberships added or removed by PATCH (no-ops not counted).
    pub member_changes: u64,
    /// Pages of `GET /users`.
    pub user_pages: u64,
    /// Users created by `POST /users` (201s).
    pub user_creates: u64,
    /// 429s sent, rate limit and forced.
    pub throttled: u64,
    /// 429s sent because the rate limit was exceeded.
    pub over_limit: u64,
    /// 503s sent on API calls.
    pub busy: u64,
    /// 401s sent on API calls.
    pub unauthorized: u64,
    /// Writes refused by `reject_writes`.
    pub rejected_writes: u64,
}

impl Counts {
    /// Every counter, read now.
    pub fn snapshot(&self) -> Stats {
        Stats {
            requests: read(&self.requests),
            tokens: read(&self.tokens),
            discoveries: read(&self.discoveries),
            group_lookups: read(&self.group_lookups),
            group_creates: read(&self.group_creates),
            group_updates: read(&self.group_updates),
            group_deletes: read(&self.group_deletes),
            member_pages: read(&self.member_pages),
            patch_users: read(&self.patch_users),
            member_changes: read(&self.member_changes),
            user_pages: read(&self.user_pages),
            user_creates: read(&self.user_creates),
            throttled: read(&self.throttled),
            over_limit: read(&self.over_limit),
            busy: read(&self.busy),
            unauthorized: read(&self.unauthorized),
            rejected_writes: read(&self.rejected_writes),
        }
    }
}
