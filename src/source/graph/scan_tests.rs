//! The fast path agrees with serde_json whenever it answers, and answers for plain pages.

use proptest::prelude::*;

use super::member_page;
use crate::source::graph::read::MemberPage;

fn serde(text: &str) -> Option<MemberPage<'_>> {
    serde_json::from_str(text).ok()
}

const GRAPH_PAGE: &str = r##"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#directoryObjects","value":[{"@odata.type":"#microsoft.graph.user","accountEnabled":true,"id":"0001","mail":"ann@example.com"},{"@odata.type":"#microsoft.graph.group","id":"0002","mail":null},{"@odata.type":"#microsoft.graph.user","id":"0003","accountEnabled":null,"mail":null,"userPrincipalName":"bob@example.com"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/groups/g/transitiveMembers?$skiptoken=X1"}"##;

#[test]
fn a_graph_page_takes_the_fast_path_and_means_what_serde_says() {
    let page = member_page(GRAPH_PAGE).expect("plain page");
    assert_eq!(page.value.len(), 3);
    assert_eq!(page.value[2].upn.as_deref(), Some("bob@example.com"));
    assert_eq!(Some(page), serde(GRAPH_PAGE));
    let last = r#" { "value" : [ ] } "#;
    assert_eq!(member_page(last), serde(last));
    assert!(member_page(last).unwrap().next.is_none());
}

#[test]
fn anything_outside_the_plain_shape_goes_to_serde() {
    for text in [
        r#"{"value":[{"id":"a\u0062"}]}"#,                   // an escape
        r#"{"value":[{"id":"a","id":"b"}]}"#,                // a duplicate field: serde refuses
        r#"{"value":[{"mail":"a@x"}]}"#,                     // no id: serde refuses
        r#"{"value":[{"id":"a","n":1}]}"#,                   // a number
        r#"{"value":[{"id":"a","o":{}}]}"#,                  // a nested value
        r#"{"value":[]} x"#,                                 // trailing text: serde refuses
        r#"{"value":[{"id":"a"}],"value":[]}"#,              // a duplicate page field
        r#"{"@odata.nextLink":"https://x"}"#,                // no value: serde refuses
        r#"{"value":[{"id":"a","accountEnabled":"true"}]}"#, // a string where a bool goes
        "{\"value\":[{\"id\":\"a\tb\"}]}",                   // a control character: serde refuses
        r#"{"value":[{"id":"a"},]}"#,                        // a trailing comma: serde refuses
        "{\"value\":[\n]}", // a line break: fine, but serde's to judge
    ] {
        assert!(member_page(text).is_none(), "{text}");
    }
}

/// A string as JSON text; `to_string` escapes what must be escaped.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Whitespace between tokens: the scanner takes spaces, and sends line breaks to serde.
fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "\n  ", "\t"])
}

fn spaces() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "  "])
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "@odata.type",
            "id",
            "mail",
            "userPrincipalName",
            "accountEnabled",
            "other",
        ])
        .prop_map(str::to_owned),
        "[a-z\"\\\\é\u{1}]{0,4}",
    ]
}

/// Any JSON value as text, plain or not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
        "[a-z@.#]{0,8}".prop_map(|s| quoted(&s)),
        "[a-z\"\\\\é😀\n\u{7f}]{0,6}".prop_map(|s| quoted(&s)),
        Just(r#""\u0041""#.to_owned()),
        Just("12".to_owned()),
        Just("{}".to_owned()),
        Just(r#"[1,"a"]"#.to_owned()),
    ]
}

fn object(fields: Vec<(String, String, &str)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v, ws)| format!("{ws}{}{ws}:{ws}{v}{ws}", quoted(&k)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn any_member() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value(), space()), 0..6).prop_map(object)
}

fn any_page() -> impl Strategy<Value = String> {
    let members =
        prop::collection::vec(any_member(), 0..4).prop_map(|ms| format!("[{}]", ms.join(",")));
    let field = prop_oneof![
        members.prop_map(|m| ("value".to_owned(), m)),
        value().prop_map(|v| ("@odata.nextLink".to_owned(), v)),
        (key(), value()),
    ];
    prop::collection::vec((field, space()), 0..4)
        .prop_map(|fields| object(fields.into_iter().map(|((k, v), ws)| (k, v, ws)).collect()))
}

/// A page Graph would send: selected fields once each, plain strings, an id always, compact.
fn plain_page() -> impl Strategy<Value = String> {
    let member = (
        "[0-9a-f-]{1,36}",
        prop::option::of("#microsoft\\.graph\\.(user|group|device)"),
        prop::option::of("[a-z0-9.]{1,10}@[a-z]{1,8}\\.com"),
        prop::option::of(any::<bool>()),
        spaces(),
    )
        .prop_map(|(id, kind, mail, enabled, ws)| {
            let mut fields = vec![("id".to_owned(), quoted(&id), ws)];
            let text = |v: Option<String>| v.map_or("null".to_owned(), |s| quoted(&s));
            fields.push(("@odata.type".to_owned(), text(kind), ws));
            fields.push(("mail".to_owned(), text(mail), ws));
            let enabled = enabled.map_or("null".to_owned(), |b| b.to_string());
            fields.push(("accountEnabled".to_owned(), enabled, ws));
            object(fields)
        });
    (
        prop::collection::vec(member, 0..20),
        prop::option::of("https://[a-z]{1,8}/\\?\\$skiptoken=[A-Za-z0-9]{1,20}"),
    )
        .prop_map(|(members, next)| {
            let mut fields = vec![(
                "@odata.context".to_owned(),
                quoted("https://graph/$metadata"),
                "",
            )];
            fields.push(("value".to_owned(), format!("[{}]", members.join(",")), ""));
            if let Some(next) = next {
                fields.push(("@odata.nextLink".to_owned(), quoted(&next), " "));
            }
            object(fields)
        })
}

/// A page with one byte replaced by JSON punctuation, or cut short.
fn mangled() -> impl Strategy<Value = String> {
    let punctuation = prop::sample::select(b"\"\\,:{}[]0 \nx".to_vec());
    (
        plain_page(),
        any::<prop::sample::Index>(),
        punctuation,
        any::<bool>(),
    )
        .prop_filter_map("a non-empty page", |(page, at, byte, cut)| {
            let mut bytes = page.into_bytes();
            let at = at.index(bytes.len());
            if cut {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            String::from_utf8(bytes).ok()
        })
}

proptest! {
    #[test]
    fn whenever_it_answers_serde_agrees(text in any_page()) {
        if let Some(page) = member_page(&text) {
            prop_assert_eq!(Some(page), serde(&text), "{}", text);
        }
    }

    #[test]
    fn a_mangled_page_is_never_read_differently(text in mangled()) {
        if let Some(page) = member_page(&text) {
            prop_assert_eq!(Some(page), serde(&text), "{}", text);
        }
    }

    #[test]
    fn every_plain_page_takes_the_fast_path(text in plain_page()) {
        let page = member_page(&text);
        prop_assert!(page.is_some(), "{}", text);
        prop_assert_eq!(page, serde(&text));
    }
}
