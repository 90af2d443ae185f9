//! Checkers (spec 6): each takes the history and returns its results map; `check`
//! combines them into the `results.edn` map with worst-of validity.
