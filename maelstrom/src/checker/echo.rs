//! Echo (docs/maelstrom-compatibility.md 6.1): every invocation's value must come back as
//! the completion's `:echo`. A completion that is not ok keeps the invocation's value,
//! which has no `:echo`, so any echo that does not complete ok is an error.

use crate::edn::Edn;
use crate::history::{History, pairs};

pub fn check(history: &History) -> Edn {
    let mut errors = Vec::new();
    for (inv, completion) in pairs(history) {
        let invoke = &history[inv];
        if !invoke.is_client() || invoke.f != "echo" {
            continue;
        }
        let echoed = completion.and_then(|c| history[c].value.get("echo"));
        if echoed != Some(&invoke.value) {
            let got = completion.map_or(Edn::Nil, |c| history[c].value.clone());
            errors.push(Edn::kw_map([
                ("expected", invoke.value.clone()),
                ("received", got),
            ]));
        }
    }
    Edn::kw_map([
        ("valid?", Edn::Bool(errors.is_empty())),
        ("errors", Edn::Vector(errors)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    fn reply(echo: &str) -> Edn {
        Edn::kw_map([
            ("type", Edn::Str("echo_ok".into())),
            ("echo", Edn::Str(echo.into())),
        ])
    }

    #[test]
    fn mismatch_and_indeterminate_are_errors() {
        let mut b = Builder::default();
        b.invoke(0, "echo", Edn::Str("a".into()));
        b.ok(0, "echo", reply("a"));
        assert_eq!(check(&b.history).get("valid?"), Some(&Edn::Bool(true)));
        b.invoke(0, "echo", Edn::Str("b".into()));
        b.ok(0, "echo", reply("c"));
        let r = check(&b.history);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        let mut b = Builder::default();
        b.invoke(0, "echo", Edn::Str("a".into()));
        b.info(0, "echo", Edn::Str("a".into()));
        assert_eq!(check(&b.history).get("valid?"), Some(&Edn::Bool(false)));
    }
}
