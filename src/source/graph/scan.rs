//! A fast path for the document a Graph read parses thousands of times: a member page.
//!
//! Graph's member pages are compact and plain — no escapes, no whitespace, only strings,
//! booleans and nulls — and most of a read's CPU went into serde_json's general machinery for
//! them. [`member_page`] reads exactly that plain shape and nothing else: for a page with a
//! backslash or a control character anywhere, or at the first token outside the shape (a
//! number, a nested value, a duplicate key, a missing `id`, trailing text), it answers `None`
//! and the caller parses the page with serde_json, which decides what the page means or why it
//! is malformed. So the scanner never has to be right about anything unusual; it only has to
//! agree with serde_json whenever it answers, which the property tests check against
//! serde_json on generated and mangled pages.

use std::borrow::Cow;

use super::read::{Member, MemberPage};

/// The page, when it is in the plain shape; `None` sends it to serde_json.
pub(super) fn member_page(text: &str) -> Option<MemberPage<'_>> {
    if !escape_free(text.as_bytes()) {
        return None;
    }
    let mut cursor = Cursor { text, at: 0 };
    let page = cursor.page()?;
    cursor.space();
    (cursor.at == text.len()).then_some(page)
}

/// Whether `bytes` hold no backslash and no control character (so no string in them has an
/// escape or a character JSON forbids there, and pretty-printed pages go to serde_json).
fn escape_free(bytes: &[u8]) -> bool {
    // Folds over fixed-size chunks without early exit, so that they compile to vector
    // instructions; one early exit a chunk.
    let unusual = |chunk: &[u8]| {
        chunk.iter().fold(0u8, |acc, &b| {
            acc | u8::from(b == b'\\') | u8::from(b < 0x20)
        }) != 0
    };
    let chunks = bytes.chunks_exact(64);
    let rest = chunks.remainder();
    !chunks.into_iter().any(unusual) && !unusual(rest)
}

/// `@odata.type` of a user, quoted.
const USER_TYPE: &[u8] = b"\"#microsoft.graph.user\"";

/// A JSON value of the plain shape.
enum Plain<'a> {
    Str(&'a str),
    Bool(bool),
    Null,
}

impl<'a> Plain<'a> {
    /// A string or null, as `optional_cow` reads it.
    fn optional_str(self) -> Option<Option<Cow<'a, str>>> {
        match self {
            Plain::Str(s) => Some(Some(Cow::Borrowed(s))),
            Plain::Null => Some(None),
            Plain::Bool(_) => None,
        }
    }
}

/// A member's key: one of the fields a member is read for, or another.
enum Field {
    Kind,
    Id,
    Mail,
    Upn,
    Enabled,
    Other,
}

/// A position in the page's text.
///
/// Its steps are `#[inline(always)]`: folded into the loops that call them, they cut the
/// bench's Graph read by a tenth of its instructions (scripts/bench; a plain `#[inline]` did
/// not change what the compiler chose).
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    /// Skips JSON whitespace.
    #[inline(always)]
    fn space(&mut self) {
        if self
            .bytes()
            .first()
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            return;
        }
        let skip = self
            .bytes()
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(self.bytes().len());
        self.at += skip;
    }

    /// Whitespace, then `byte`.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.bytes().first() == Some(&byte)).then(|| self.at += 1)
    }

    /// Whitespace, then `,` (another item follows: `true`) or `close` (`false`).
    #[inline(always)]
    fn more(&mut self, close: u8) -> Option<bool> {
        self.space();
        let next = *self.bytes().first()?;
        self.at += 1;
        match next {
            b',' => Some(true),
            b if b == close => Some(false),
            _ => None,
        }
    }

    /// Whitespace, then a string (escape-free, as the whole page is).
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        // `member_page` made sure the page holds neither backslashes nor control characters.
        let len = memchr::memchr(b'"', self.bytes())?;
        // Both ends sit next to an ASCII quote, so the slice is on character boundaries.
        let s = &self.text[self.at..self.at + len];
        self.at += len + 1;
        Some(s)
    }

    /// Whitespace, then a member's key: the fields `$select` asks for are recognised without a
    /// search for the closing quote, any other key is read as a string.
    #[inline(always)]
    fn field(&mut self) -> Option<Field> {
        self.space();
        let rest = self.bytes();
        let (field, len) = match rest.get(1)? {
            b'i' if rest.starts_with(b"\"id\"") => (Field::Id, 4),
            b'm' if rest.starts_with(b"\"mail\"") => (Field::Mail, 6),
            b'@' if rest.starts_with(b"\"@odata.type\"") => (Field::Kind, 13),
            b'a' if rest.starts_with(b"\"accountEnabled\"") => (Field::Enabled, 16),
            b'u' if rest.starts_with(b"\"userPrincipalName\"") => (Field::Upn, 19),
            _ => return self.string().map(|_| Field::Other),
        };
        self.at += len;
        Some(field)
    }

    /// Whitespace, then a string, `true`, `false` or `null`.
    #[inline(always)]
    fn value(&mut self) -> Option<Plain<'a>> {
        self.space();
        let rest = self.bytes();
        let (value, len) = match rest.first()? {
            // The type of most members, recognised without a search for the closing quote.
            b'"' if rest.starts_with(USER_TYPE) => {
                let at = self.at + 1;
                (
                    Plain::Str(&self.text[at..at + USER_TYPE.len() - 2]),
                    USER_TYPE.len(),
                )
            }
            b'"' => return self.string().map(Plain::Str),
            b't' if rest.starts_with(b"true") => (Plain::Bool(true), 4),
            b'f' if rest.starts_with(b"false") => (Plain::Bool(false), 5),
            b'n' if rest.starts_with(b"null") => (Plain::Null, 4),
            _ => return None,
        };
        self.at += len;
        Some(value)
    }

    /// `{"value": [...], "@odata.nextLink": ..., other plain fields}` in any order.
    fn page(&mut self) -> Option<MemberPage<'a>> {
        self.eat(b'{')?;
        let mut value = None;
        let mut next = None;
        if self.peek_close(b'}') {
            return None;
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            match key {
                "value" if value.is_none() => value = Some(self.members()?),
                "@odata.nextLink" if next.is_none() => next = Some(self.value()?.optional_str()?),
                "value" | "@odata.nextLink" => return None,
                _ => {
                    self.value()?;
                }
            }
            if !self.more(b'}')? {
                break;
            }
        }
        Some(MemberPage {
            value: value?,
            next: next.flatten(),
        })
    }

    /// Whitespace, then `close` if it is next (consumed).
    fn peek_close(&mut self, close: u8) -> bool {
        self.space();
        let found = self.bytes().first() == Some(&close);
        if found {
            self.at += 1;
        }
        found
    }

    /// `[member, ...]`.
    fn members(&mut self) -> Option<Vec<Member<'a>>> {
        self.eat(b'[')?;
        // About a hundred bytes a member: grown once at most, rather than copied ten times.
        let mut members = Vec::with_capacity(self.text.len() / 100);
        if self.peek_close(b']') {
            return Some(members);
        }
        loop {
            members.push(self.member()?);
            if !self.more(b']')? {
                return Some(members);
            }
        }
    }

    /// One directory object: `id` required; the selected fields at most once each.
    fn member(&mut self) -> Option<Member<'a>> {
        self.eat(b'{')?;
        let (mut kind, mut id, mut mail, mut upn, mut enabled) = (None, None, None, None, None);
        if self.peek_close(b'}') {
            return None;
        }
        loop {
            let field = self.field()?;
            self.eat(b':')?;
            let value = self.value()?;
            let slot_was_empty = match field {
                Field::Kind => kind.replace(value.optional_str()?).is_none(),
                Field::Id => match value {
                    Plain::Str(s) => id.replace(Cow::Borrowed(s)).is_none(),
                    _ => return None,
                },
                Field::Mail => mail.replace(value.optional_str()?).is_none(),
                Field::Upn => upn.replace(value.optional_str()?).is_none(),
                Field::Enabled => match value {
                    Plain::Bool(b) => enabled.replace(Some(b)).is_none(),
                    Plain::Null => enabled.replace(None).is_none(),
                    Plain::Str(_) => return None,
                },
                Field::Other => true,
            };
            if !slot_was_empty {
                return None;
            }
            if !self.more(b'}')? {
                break;
            }
        }
        Some(Member {
            kind: kind.flatten(),
            id: id?,
            mail: mail.flatten(),
            upn: upn.flatten(),
            enabled: enabled.flatten(),
        })
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
