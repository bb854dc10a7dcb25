//! An IdP's group ids and names from its last applied read, indexed both ways once per catalog
//! so that each login matches its groups claim without building the index again.

use rustc_hash::FxHashMap as HashMap;

/// (IdP group id, name) pairs, found by id or by name.
#[derive(Debug, Default)]
pub struct IdpGroupNames {
    by_id: HashMap<String, String>,
    by_name: HashMap<String, Vec<String>>,
}

impl IdpGroupNames {
    /// Indexes `pairs` of (id, name).
    pub fn new(pairs: Vec<(String, String)>) -> IdpGroupNames {
        let mut names = IdpGroupNames::default();
        for (id, name) in pairs {
            names
                .by_name
                .entry(name.clone())
                .or_default()
                .push(id.clone());
            names.by_id.insert(id, name);
        }
        names
    }

    /// The name of the group with `id`.
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    /// The ids of the groups named `name` (empty for none).
    pub fn ids_named(&self, name: &str) -> &[String] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_found_by_id_or_by_name_and_a_shared_name_lists_every_id() {
        let pair = |id: &str, name: &str| (id.to_owned(), name.to_owned());
        let names = IdpGroupNames::new(vec![
            pair("g-1", "Ops"),
            pair("g-2", "Ops"),
            pair("g-3", "Sales"),
        ]);
        assert_eq!(names.name_of("g-3"), Some("Sales"));
        assert_eq!(names.name_of("Sales"), None);
        assert_eq!(names.ids_named("Sales"), ["g-3"]);
        let mut ops = names.ids_named("Ops").to_vec();
        ops.sort();
        assert_eq!(
            ops,
            ["g-1", "g-2"],
            "one name, two groups: a claim of it is ambiguous"
        );
        assert!(names.ids_named("g-1").is_empty());
    }
}
