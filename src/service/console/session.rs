//! The console's sign-in sessions, kept in memory: a random session id (the cookie's value) maps
//! to the session's CSRF token, its expiry, the admin token it was opened with (as a digest) and a
//! flash message waiting for the next page.
//!
//! A session ends when it expires ([`LIFETIME`] after sign-in), when the person signs out, when the
//! service restarts, or when a reload changes the admin token. Nothing here reads a clock: callers
//! pass `now`, so the expiry is tested without waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// The name of the session cookie.
pub(super) const COOKIE: &str = "idpsync_console";

/// How long a session lasts after sign-in (the cookie's `Max-Age`).
pub(super) const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// At most this many sessions are kept; signing in beyond it ends the one closest to expiry.
const MAX_SESSIONS: usize = 256;

/// A signed-in session, as a request sees it.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The session id: the cookie's value.
    pub(super) id: String,
    /// The token every form of this session carries.
    pub(super) csrf: String,
    /// The message a write left for the page after its redirect, taken when found.
    pub(super) flash: Option<String>,
}

impl Session {
    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub(super) fn csrf_matches(&self, given: &str) -> bool {
        crate::service::http::equal_in_constant_time(given.as_bytes(), self.csrf.as_bytes())
    }
}

struct Entry {
    csrf: String,
    token: ring::digest::Digest,
    expires: Instant,
    flash: Option<String>,
}

/// The sessions of the console.
#[derive(Default)]
pub(super) struct Sessions {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Opens a session for a person who gave `admin_token`; it expires [`LIFETIME`] after `now`.
    pub(super) fn open(&self, admin_token: &[u8], now: Instant) -> Session {
        let session = Session {
            id: random_token(),
            csrf: random_token(),
            flash: None,
        };
        let mut entries = self.lock();
        entries.retain(|_, e| e.expires > now);
        while entries.len() >= MAX_SESSIONS {
            let soonest = entries
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(id, _)| id.clone())
                .expect("not empty");
            entries.remove(&soonest);
        }
        entries.insert(
            session.id.clone(),
            Entry {
                csrf: session.csrf.clone(),
                token: digest(admin_token),
                expires: now + LIFETIME,
                flash: None,
            },
        );
        session
    }

    /// The session `id`, if it is open at `now` and was opened with `admin_token` (the token in
    /// force); its flash message is taken with it. A session found expired or opened with another
    /// token is ended.
    pub(super) fn find(&self, id: &str, admin_token: &[u8], now: Instant) -> Option<Session> {
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        let same_token = crate::service::http::equal_in_constant_time(
            entry.token.as_ref(),
            digest(admin_token).as_ref(),
        );
        if entry.expires <= now || !same_token {
            entries.remove(id);
            return None;
        }
        Some(Session {
            id: id.to_owned(),
            csrf: entry.csrf.clone(),
            flash: entry.flash.take(),
        })
    }

    /// Leaves `text` for the next page session `id` shows.
    pub(super) fn flash(&self, id: &str, text: String) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.flash = Some(text);
        }
    }

    /// Ends session `id` (sign-out).
    pub(super) fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .expect("the sessions lock is never poisoned")
    }
}

/// 256 random bits, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"admin-token";

    #[test]
    fn a_session_lasts_its_lifetime_and_not_a_moment_longer() {
        let sessions = Sessions::default();
        let start = Instant::now();
        let session = sessions.open(TOKEN, start);
        let later = start + LIFETIME - Duration::from_secs(1);
        let found = sessions
            .find(&session.id, TOKEN, later)
            .expect("still open");
        assert_eq!(found.csrf, session.csrf);
        assert!(
            sessions
                .find(&session.id, TOKEN, start + LIFETIME)
                .is_none()
        );
        // Once found expired it is gone, even for an earlier clock.
        assert!(sessions.find(&session.id, TOKEN, start).is_none());
    }

    #[test]
    fn a_new_admin_token_ends_the_sessions_of_the_old_one() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let session = sessions.open(TOKEN, now);
        assert!(sessions.find(&session.id, b"another-token", now).is_none());
        assert!(sessions.find(&session.id, TOKEN, now).is_none());
    }

    #[test]
    fn sessions_have_their_own_unguessable_ids_and_csrf_tokens() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let (a, b) = (sessions.open(TOKEN, now), sessions.open(TOKEN, now));
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_ne!(a.id, a.csrf);
        assert_eq!(a.id.len(), 43, "256 bits in base64");
        assert!(a.csrf_matches(&a.csrf.clone()));
        assert!(!a.csrf_matches(&b.csrf));
        assert!(!a.csrf_matches(""));
    }

    #[test]
    fn a_flash_is_shown_once_and_sign_out_ends_the_session() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let session = sessions.open(TOKEN, now);
        sessions.flash(&session.id, "Group created.".into());
        let first = sessions.find(&session.id, TOKEN, now).unwrap();
        assert_eq!(first.flash.as_deref(), Some("Group created."));
        assert_eq!(sessions.find(&session.id, TOKEN, now).unwrap().flash, None);
        sessions.end(&session.id);
        assert!(sessions.find(&session.id, TOKEN, now).is_none());
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let first = sessions.open(TOKEN, now);
        for i in 0..MAX_SESSIONS {
            sessions.open(TOKEN, now + Duration::from_secs(i as u64 + 1));
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(
            sessions.find(&first.id, TOKEN, now).is_none(),
            "the oldest went first"
        );
    }
}
