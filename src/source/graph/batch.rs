//! Members through JSON `$batch` (reference/idp-apis.md §1.7): the first member page of up to 20
//! groups in one POST, answers matched by `id` in whatever order they come.
//!
//! Each part is throttled on its own: a part answered 429 (or 503/504) is sent again in the next
//! batch after the longest `Retry-After` its parts asked for, with the same backoff and retry
//! budget as any request; parts that succeeded are not sent again. A part's `@odata.nextLink` is
//! followed with plain GETs.

use std::sync::Mutex;
use std::time::Duration;

use backon::Retryable;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{GraphSource, ok};
use crate::source::SourceError;
use crate::source::collect::Collected;

/// Graph's limit of requests in one batch.
const BATCH_LIMIT: usize = 20;

#[derive(Deserialize)]
struct BatchResponse<'a> {
    #[serde(borrow)]
    responses: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    id: String,
    status: u16,
    #[serde(default)]
    headers: std::collections::HashMap<String, String>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

/// Why one attempt at a batch did not finish it.
enum Attempt {
    /// Some parts were throttled; wait this long (when they said) and send them again.
    Throttled(Option<Duration>),
    /// The read fails.
    Failed(SourceError),
}

/// Reads the members of every listed group through batches, `max_concurrency` batches at a time.
pub(super) async fn read_members(
    source: &GraphSource,
    collected: &mut Collected,
) -> Result<(), SourceError> {
    let firsts = source.first_pages(collected);
    let shared = Mutex::new(std::mem::take(collected));
    let follow = Mutex::new(Vec::new());
    let chunks: Vec<Vec<(usize, String)>> = firsts.chunks(BATCH_LIMIT).map(<[_]>::to_vec).collect();
    let (shared_ref, follow_ref) = (&shared, &follow);
    futures_util::stream::iter(chunks)
        .map(|chunk| async move { one_batch(source, &chunk, shared_ref, follow_ref).await })
        .buffer_unordered(source.config.http.max_concurrency)
        .try_collect::<()>()
        .await?;
    // Groups larger than one page: their further pages, read as plain GETs.
    let follow = follow.into_inner().expect("no panics under this lock");
    futures_util::stream::iter(follow)
        .map(|(group, url)| source.read_group(group, url, &shared))
        .buffer_unordered(source.config.http.max_concurrency)
        .try_collect::<()>()
        .await?;
    *collected = shared.into_inner().expect("no panics under this lock");
    Ok(())
}

/// Sends one batch until every part has succeeded, retrying only the throttled parts.
async fn one_batch(
    source: &GraphSource,
    chunk: &[(usize, String)],
    collected: &Mutex<Collected>,
    follow: &Mutex<Vec<(usize, reqwest::Url)>>,
) -> Result<(), SourceError> {
    let client = source.client()?;
    let pending = Mutex::new(chunk.to_vec());
    let url = source.v1("/$batch")?;
    let what = format!("POST {url}");
    let attempt = || async {
        let parts: Vec<(usize, String)> = pending.lock().expect("no panics").clone();
        let body = serde_json::json!({
            "requests": parts.iter().enumerate().map(|(i, (_, path))| serde_json::json!({
                "id": i.to_string(), "method": "GET", "url": path,
            })).collect::<Vec<_>>(),
        });
        let response = source
            .post(url.clone(), &body)
            .await
            .and_then(ok)
            .map_err(Attempt::Failed)?;
        let answer: BatchResponse = response
            .json()
            .map_err(|e| Attempt::Failed(SourceError::Invalid(e.to_string())))?;
        let mut throttled = Vec::new();
        let mut wait: Option<Duration> = None;
        let mut answered = vec![false; parts.len()];
        for part in answer.responses {
            let Some(index) = part.id.parse::<usize>().ok().filter(|i| *i < parts.len()) else {
                return Err(Attempt::Failed(SourceError::Invalid(format!(
                    "{what}: an answer names request id {:?}, which was not sent",
                    part.id
                ))));
            };
            answered[index] = true;
            let (group, path) = &parts[index];
            let part_what = format!("{what} (GET {path})");
            match part.status {
                200..=299 => {
                    let body = part.body.map_or("{}", RawValue::get);
                    let next = source
                        .add_page(*group, body.as_bytes(), &part_what, collected)
                        .map_err(Attempt::Failed)?;
                    if let Some(next) = next {
                        follow.lock().expect("no panics").push((*group, next));
                    }
                }
                429 | 503 | 504 => {
                    client.count_throttle();
                    let asked = part
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    wait = wait.max(asked);
                    throttled.push(parts[index].clone());
                }
                status => {
                    return Err(Attempt::Failed(part_failure(status, &part_what, part.body)));
                }
            }
        }
        if let Some(missing) = answered.iter().position(|a| !a) {
            return Err(Attempt::Failed(SourceError::Invalid(format!(
                "{what}: no answer for request id {missing}"
            ))));
        }
        let more = !throttled.is_empty();
        *pending.lock().expect("no panics") = throttled;
        if more {
            return Err(Attempt::Throttled(wait));
        }
        Ok(())
    };
    let max_wait = client.max_wait();
    attempt
        .retry(client.backoff())
        .sleep(tokio::time::sleep)
        .when(|a: &Attempt| matches!(a, Attempt::Throttled(_)) && client.take_retry())
        .adjust(|a: &Attempt, backoff| match a {
            _ if backoff.is_none() => None,
            Attempt::Throttled(Some(wait)) if *wait > max_wait => None,
            Attempt::Throttled(Some(wait)) => {
                Some(*wait + Duration::from_millis(fastrand::u64(0..=250)))
            }
            _ => backoff,
        })
        .await
        .map_err(|a| match a {
            Attempt::Failed(e) => e,
            Attempt::Throttled(_) => SourceError::Unavailable(format!(
                "{what}: parts of the batch stayed throttled through every retry"
            )),
        })
}

/// A failed part as the failure it means, with the code of its error body.
fn part_failure(status: u16, what: &str, body: Option<&RawValue>) -> SourceError {
    let code = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b.get()).ok())
        .and_then(|v| {
            v.pointer("/error/code")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let message = format!("{what}: {status} {code}");
    match status {
        401 | 403 => SourceError::Unauthorized(message),
        404 | 410 => SourceError::Unavailable(message),
        s if s >= 500 => SourceError::Unavailable(message),
        _ => SourceError::Invalid(message),
    }
}
