//! When the service runs next: the cron schedule (with seconds), optional jitter, and the runs a
//! long run made the service skip.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The next time `schedule` fires strictly after `after`.
pub fn next_after(schedule: &cron::Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.after(&after).next()
}

/// How many times `schedule` fired in (`from`, `to`]: the scheduled runs a run lasting from
/// `from` to `to` made the service skip (two runs never overlap). Capped, so a schedule firing
/// every second over a day-long run does not iterate forever.
pub fn fired_between(schedule: &cron::Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    schedule
        .after(&from)
        .take_while(|t| *t <= to)
        .take(1_000_000)
        .count() as u64
}

/// A random delay in `[0, jitter]`; zero when jitter is off.
pub fn jitter(jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    let millis = jitter.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(fastrand::u64(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_next_run_follows_the_cron_expression_with_seconds() {
        let every_five_minutes = cron::Schedule::from_str("0 */5 * * * *").unwrap();
        assert_eq!(
            next_after(&every_five_minutes, at("2026-11-28T10:02:30Z")),
            Some(at("2026-11-28T10:05:00Z"))
        );
        assert_eq!(
            next_after(&every_five_minutes, at("2026-11-28T10:05:00Z")),
            Some(at("2026-11-28T10:10:00Z")),
            "strictly after"
        );
    }

    #[test]
    fn a_long_run_skips_the_runs_due_meanwhile() {
        let every_ten_seconds = cron::Schedule::from_str("*/10 * * * * *").unwrap();
        let (from, to) = (at("2026-11-28T10:00:05Z"), at("2026-11-28T10:00:41Z"));
        assert_eq!(
            fired_between(&every_ten_seconds, from, to),
            4,
            ":10 :20 :30 :40"
        );
        assert_eq!(fired_between(&every_ten_seconds, from, from), 0);
    }

    #[test]
    fn jitter_stays_within_its_bound_and_is_off_at_zero() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(2)) <= Duration::from_secs(2));
        }
    }
}
