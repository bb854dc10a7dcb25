//! A submitted form (`application/x-www-form-urlencoded`), read once by the guard, which checks
//! its CSRF token before any handler sees it. Fields may repeat (the role checkboxes).

/// The largest form body the console reads; a larger one is refused with 413.
pub(super) const MAX_FORM_BYTES: usize = 64 * 1024;

/// The fields of a submitted form, in order.
#[derive(Debug, Clone, Default)]
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses a form body.
    pub(super) fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of field `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of field `name`, or `""`.
    pub(super) fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The first value of textarea `name`, its line ends made `\n`: browsers send a textarea's
    /// lines ending `\r\n`, which would otherwise differ from the same text stored with `\n`.
    pub(super) fn textarea(&self, name: &str) -> String {
        unix_line_ends(self.text(name))
    }

    /// Every value of field `name`, in order.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a checkbox named `name` was checked.
    pub(super) fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// `text` with every `\r\n`, and every lone `\r`, made `\n`.
pub(super) fn unix_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_and_encoded_values_are_read() {
        let form = Form::parse(b"csrf=a%2Bb&role=Dash%2FViewer&role=Dash%2FEditor&name=Sales+EU");
        assert_eq!(form.get("csrf"), Some("a+b"));
        assert_eq!(form.all("role"), ["Dash/Viewer", "Dash/Editor"]);
        assert_eq!(form.text("name"), "Sales EU");
        assert_eq!(form.text("missing"), "");
        assert!(!form.checked("remove_members"));
    }

    #[test]
    fn a_textarea_s_line_ends_are_unix_ones() {
        let form = Form::parse(b"description=One%0D%0ATwo%0DThree%0AFour%0D%0A");
        assert_eq!(form.textarea("description"), "One\nTwo\nThree\nFour\n");
        assert_eq!(form.textarea("missing"), "");
    }
}
