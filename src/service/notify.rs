//! systemd's notification protocol (`Type=notify`) through the sd-notify crate: READY once the
//! state is open and the listener bound, RELOADING around a SIGHUP, STOPPING on the way out, and
//! WATCHDOG pings at half the `WatchdogSec` interval. Without `NOTIFY_SOCKET` each is a no-op.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed.");
    }
}

/// READY=1.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// RELOADING=1 (with the monotonic time systemd asks for).
pub fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// STOPPING=1.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Starts the WATCHDOG=1 pings when systemd asked for them (`WatchdogSec`).
pub fn watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    tracing::info!(
        seconds = interval.as_secs_f64(),
        "systemd watchdog on; pinging at half the interval."
    );
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval / 2);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}
