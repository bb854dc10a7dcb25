//! An IdP's group ids and names from its last applied read, indexed both ways once per catalog
//! so that each login matches its groups claim without building the index again.

use rustc_hash::FxHashMap as HashMap;

/// (IdP group id, name) pairs, found by id or by name.
#[derive(Debug, Default, Clone)]
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
