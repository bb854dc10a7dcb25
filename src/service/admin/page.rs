//! Lists as `{"items": [...], "next": <cursor or null>}`, a `limit` at a time (SPEC §4).

use serde::{Deserialize, Serialize};

/// The most items one page holds, and the default.
pub(super) const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

/// `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// How many items at most (1–1000; 100 when absent).
    pub(super) limit: Option<u32>,
    /// The `next` of the page before.
    pub(super) cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Page<T> {
    /// The items of this page.
    pub(super) items: Vec<T>,
    /// The cursor of the next page; `null` on the last.
    pub(super) next: Option<String>,
}

impl PageQuery {
    /// The limit asked for, or why it is refused.
    pub(super) fn limit(&self) -> Result<u32, super::Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(super::Problem::bad_request(format!(
                "limit {n} is out of range: give 1 to {MAX_LIMIT}"
            ))),
        }
    }

    /// The cursor of a list paged in the state (the row id the page before ended at).
    pub(super) fn keyset(&self) -> Result<Option<i64>, super::Problem> {
        self.cursor
            .as_deref()
            .map(|c| c.parse::<i64>().map_err(|_| bad_cursor(c)))
            .transpose()
    }

    /// The page of `all` this query asks for; the cursor is the offset of its first item.
    pub(super) fn page_of<T>(&self, all: Vec<T>) -> Result<Page<T>, super::Problem> {
        let limit = self.limit()? as usize;
        let from = match &self.cursor {
            None => 0,
            Some(cursor) => cursor.parse::<usize>().map_err(|_| bad_cursor(cursor))?,
        };
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(from).take(limit).collect();
        let end = from.saturating_add(items.len());
        Ok(Page {
            items,
            next: (end < total).then(|| end.to_string()),
        })
    }
}

fn bad_cursor(cursor: &str) -> super::Problem {
    super::Problem::bad_request(format!(
        "cursor {cursor:?} is not one this API gave: pass the `next` of the page before"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_list_once_and_end_with_null() {
        let all: Vec<u32> = (0..5).collect();
        let mut query = PageQuery {
            limit: Some(2),
            cursor: None,
        };
        let mut seen = Vec::new();
        loop {
            let page = query.page_of(all.clone()).unwrap();
            seen.extend(page.items);
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, all);
        assert!(
            PageQuery {
                limit: Some(0),
                cursor: None
            }
            .limit()
            .is_err()
        );
        assert!(
            PageQuery {
                limit: Some(1001),
                cursor: None
            }
            .limit()
            .is_err()
        );
        assert!(
            PageQuery {
                limit: None,
                cursor: Some("x".into())
            }
            .page_of(all)
            .is_err()
        );
    }
}
