//! EDN values: what `results.edn` and `history.edn` are written in, and what
//! `maelstrom summarize` reads back (also from real Maelstrom's output).
//! The same tree renders as JSON for `results.json` (keywords become strings).

/// An EDN value. Maps keep insertion order (Clojure array-maps print that way).
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A keyword, stored without its leading colon: `Keyword("valid?")` prints `:valid?`.
    Keyword(String),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    /// `#tag value`, e.g. `#jepsen.history.Op{...}` in real Maelstrom's results.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// A keyword: `Edn::kw("valid?")`.
    pub fn kw(name: &str) -> Edn {
        Edn::Keyword(name.to_string())
    }

    /// A map with keyword keys, in the given order.
    pub fn kw_map<'a>(entries: impl IntoIterator<Item = (&'a str, Edn)>) -> Edn {
        Edn::Map(entries.into_iter().map(|(k, v)| (Edn::kw(k), v)).collect())
    }

    /// Looks up a keyword key in a map (`None` for other values).
    pub fn get(&self, keyword: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(name) if name == keyword))
                .map(|(_, v)| v),
            Edn::Tagged(_, inner) => inner.get(keyword),
            _ => None,
        }
    }

    /// Follows a path of keyword keys.
    pub fn get_in(&self, path: &[&str]) -> Option<&Edn> {
        path.iter().try_fold(self, |v, k| v.get(k))
    }
}
