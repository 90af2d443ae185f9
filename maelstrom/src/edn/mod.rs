//! EDN values: what `results.edn` and `history.edn` are written in, and what
//! `maelstrom summarize` reads back (also from real Maelstrom's output).
//! The same tree renders as JSON for `results.json` (keywords become strings).

mod read;

use std::cmp::Ordering;

pub use read::{parse, parse_all};

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

impl std::fmt::Display for Edn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_to(f)
    }
}

impl Edn {
    /// Writes the value as `Display` prints it, into any writer (e.g. a hasher, without
    /// building the text).
    pub fn write_to<W: std::fmt::Write + ?Sized>(&self, f: &mut W) -> std::fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Edn::Int(i) => write_int(f, *i),
            Edn::Float(x) => f.write_str(&float(*x)),
            Edn::Str(s) => write_string(f, s),
            Edn::Keyword(k) => {
                f.write_str(":")?;
                f.write_str(k)
            }
            Edn::Vector(items) => write_seq(f, "[", items, "]"),
            Edn::Set(items) => write_seq(f, "#{", items, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    k.write_to(f)?;
                    f.write_str(" ")?;
                    v.write_to(f)?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => {
                f.write_str("#")?;
                f.write_str(tag)?;
                f.write_str(" ")?;
                inner.write_to(f)
            }
        }
    }
}

/// An integer in decimal, as `{i}` prints it, without going through `format_args!`
/// (histories are mostly integers): two digits at a time, each pair a slice of one text.
pub(crate) fn write_int<W: std::fmt::Write + ?Sized>(f: &mut W, i: i64) -> std::fmt::Result {
    const PAIRS: &str = "0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839404142434445464748495051525354555657585960\
        6162636465666768697071727374757677787980818283848586878889909192939495969798\
        99";
    let pair = |p: u64| &PAIRS[2 * p as usize..2 * p as usize + 2];
    if i < 0 {
        f.write_str("-")?;
    }
    // The pairs from the lowest; the first (highest) of one digit if it is under 10.
    let mut groups = [0u64; 10];
    let mut count = 0;
    let mut n = i.unsigned_abs();
    while n >= 100 {
        groups[count] = n % 100;
        count += 1;
        n /= 100;
    }
    if n >= 10 {
        f.write_str(pair(n))?;
    } else {
        f.write_str(&pair(n)[1..])?;
    }
    for &group in groups[..count].iter().rev() {
        f.write_str(pair(group))?;
    }
    Ok(())
}

fn float(x: f64) -> String {
    if x.is_nan() {
        "##NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "##Inf".into()
        } else {
            "##-Inf".into()
        }
    } else if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

pub(crate) fn write_string<W: std::fmt::Write + ?Sized>(f: &mut W, s: &str) -> std::fmt::Result {
    f.write_str("\"")?;
    let mut plain = 0;
    for (at, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            _ => continue,
        };
        f.write_str(&s[plain..at])?;
        f.write_str(escaped)?;
        plain = at + c.len_utf8();
    }
    f.write_str(&s[plain..])?;
    f.write_str("\"")
}

fn write_seq<W: std::fmt::Write + ?Sized>(
    f: &mut W,
    open: &str,
    items: &[Edn],
    close: &str,
) -> std::fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        item.write_to(f)?;
    }
    f.write_str(close)
}

/// Width under which a collection is printed on one line by `pretty`.
const PRETTY_WIDTH: usize = 72;

impl Edn {
    /// A readable multi-line rendering (like Clojure's pprint): a collection that does not
    /// fit on one line puts one entry per line, indented under its opening bracket.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.pretty_into(&mut out, 0);
        out
    }

    fn pretty_into(&self, out: &mut String, indent: usize) {
        let flat = self.to_string();
        if flat.len() + indent <= PRETTY_WIDTH {
            out.push_str(&flat);
            return;
        }
        match self {
            Edn::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(indent + 1));
                    }
                    let key = k.to_string();
                    out.push_str(&key);
                    let value_flat = v.to_string();
                    if indent + 1 + key.len() + 1 + value_flat.len() <= PRETTY_WIDTH {
                        out.push(' ');
                        out.push_str(&value_flat);
                    } else {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent + 2));
                        v.pretty_into(out, indent + 2);
                    }
                }
                out.push('}');
            }
            Edn::Vector(items) | Edn::Set(items) => {
                let (open, close) = if matches!(self, Edn::Vector(_)) {
                    ("[", "]")
                } else {
                    ("#{", "}")
                };
                out.push_str(open);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent + open.len()));
                    }
                    item.pretty_into(out, indent + open.len());
                }
                out.push_str(close);
            }
            Edn::Tagged(tag, inner) => {
                out.push('#');
                out.push_str(tag);
                inner.pretty_into(out, indent + tag.len() + 1);
            }
            other => out.push_str(&other.to_string()),
        }
    }

    /// The same tree as JSON: keywords become strings, sets arrays, map keys strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Edn::Str(s) | Edn::Keyword(s) => Value::String(s.clone()),
            Edn::Vector(items) | Edn::Set(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Edn::Str(s) | Edn::Keyword(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
            Edn::Tagged(_, inner) => inner.to_json(),
        }
    }

    /// A JSON value from a node's message as EDN: objects keep string keys (Maelstrom only
    /// keywordizes top-level body keys), integers that fit i64 stay integers.
    pub fn from_json(value: &serde_json::Value) -> Edn {
        use serde_json::Value;
        match value {
            Value::Null => Edn::Nil,
            Value::Bool(b) => Edn::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Edn::Float(n.as_f64().unwrap_or(f64::NAN)), Edn::Int),
            Value::String(s) => Edn::Str(s.clone()),
            Value::Array(items) => Edn::Vector(items.iter().map(Edn::from_json).collect()),
            Value::Object(map) => Edn::Map(
                map.iter()
                    .map(|(k, v)| (Edn::Str(k.clone()), Edn::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// `Some(true/false)` for booleans; `None` for anything else (e.g. `:unknown`).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Edn::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Edn::Int(i) => Some(*i as f64),
            Edn::Float(x) => Some(*x),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Edn::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl PartialOrd for Edn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Eq for Edn {}

/// A total order on values, for sorting and for sets of values (the set-full checker's
/// elements): by kind (nil, booleans, numbers, strings, keywords, vectors, sets, maps,
/// tagged values), numbers by value, exactly (`1` and `1.0` are one value; NaN after every
/// number), strings by character, vectors element by element, sets and maps whatever the
/// order they were written in. (`==` is structural: it tells `1` from `1.0`.)
impl Ord for Edn {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Edn::Nil, Edn::Nil) => Ordering::Equal,
            (Edn::Bool(a), Edn::Bool(b)) => a.cmp(b),
            (Edn::Int(a), Edn::Int(b)) => a.cmp(b),
            (Edn::Int(a), Edn::Float(b)) => int_float(*a, *b),
            (Edn::Float(a), Edn::Int(b)) => int_float(*b, *a).reverse(),
            (Edn::Float(a), Edn::Float(b)) => floats(*a, *b),
            (Edn::Str(a), Edn::Str(b)) | (Edn::Keyword(a), Edn::Keyword(b)) => a.cmp(b),
            (Edn::Vector(a), Edn::Vector(b)) => a.cmp(b),
            (Edn::Set(a), Edn::Set(b)) => sorted(a).cmp(&sorted(b)),
            (Edn::Map(a), Edn::Map(b)) => sorted(a).cmp(&sorted(b)),
            (Edn::Tagged(t, a), Edn::Tagged(u, b)) => (t, a).cmp(&(u, b)),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl Edn {
    /// The place of a value's kind in the order.
    fn rank(&self) -> u8 {
        match self {
            Edn::Nil => 0,
            Edn::Bool(_) => 1,
            Edn::Int(_) | Edn::Float(_) => 2,
            Edn::Str(_) => 3,
            Edn::Keyword(_) => 4,
            Edn::Vector(_) => 5,
            Edn::Set(_) => 6,
            Edn::Map(_) => 7,
            Edn::Tagged(..) => 8,
        }
    }
}

fn sorted<T: Ord>(items: &[T]) -> Vec<&T> {
    let mut v: Vec<&T> = items.iter().collect();
    v.sort();
    v
}

/// Floats by value (-0.0 = 0.0), NaN after every number.
fn floats(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// An integer against a float, exactly (no rounding of large integers).
fn int_float(i: i64, x: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || x >= TWO_63 {
        return Ordering::Less;
    }
    if x < -TWO_63 {
        return Ordering::Greater;
    }
    let whole = x.trunc();
    // |whole| < 2^63 (or exactly -2^63): the cast is exact.
    i.cmp(&(whole as i64))
        .then_with(|| 0.0.partial_cmp(&(x - whole)).expect("finite"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prints_like_clojure() {
        let v = Edn::kw_map([
            ("valid?", Edn::Bool(true)),
            ("count", Edn::Int(3)),
            ("rate", Edn::Float(3.0)),
            ("f", Edn::kw("read")),
            ("s", Edn::Str("a\"b".into())),
            ("v", Edn::Vector(vec![Edn::Int(1), Edn::Nil])),
            ("set", Edn::Set(vec![Edn::Int(2)])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{:valid? true, :count 3, :rate 3.0, :f :read, :s "a\"b", :v [1 nil], :set #{2}}"#
        );
        assert_eq!(v.get("count"), Some(&Edn::Int(3)));
        let json = v.to_json();
        assert_eq!(json["valid?"], serde_json::json!(true));
        assert_eq!(json["f"], serde_json::json!("read"));
    }

    #[test]
    fn reads_real_maelstrom_output() {
        let text = r#"{:workload {:worst-stale (#jepsen.history.Op{:index 5, :time 123, :type :invoke, :process 0, :f :read, :value nil})
                       :stable-latencies {0 0, 0.5 312, 1 455}, :valid? true},
                       :net {:servers {:msgs-per-op 2.5}}, :ratio 1/4, :big 12N, :c \a, ; comment
                       :x #_ ignored :y, :valid? :unknown}"#;
        let v = parse(text).unwrap();
        assert_eq!(
            v.get_in(&["net", "servers", "msgs-per-op"]),
            Some(&Edn::Float(2.5))
        );
        assert_eq!(v.get("ratio"), Some(&Edn::Float(0.25)));
        assert_eq!(v.get("big"), Some(&Edn::Int(12)));
        assert_eq!(v.get("x"), Some(&Edn::kw("y")));
        assert_eq!(v.get("valid?"), Some(&Edn::kw("unknown")));
        let Some(Edn::Vector(stale)) = v.get_in(&["workload", "worst-stale"]) else {
            panic!()
        };
        assert_eq!(stale[0].get("f"), Some(&Edn::kw("read")));
        assert_eq!(parse_all("{:a 1}\n{:a 2}\n").unwrap().len(), 2);
        assert!(parse("{:a").is_err());
    }

    #[test]
    fn integers_print_as_rust_prints_them() {
        let mut n: i64 = 1;
        let mut all = vec![0, i64::MIN, i64::MAX, -1, 9, 10, 99, 100, 101];
        while let Some(next) = n.checked_mul(7) {
            all.extend([n, -n, n - 1, n + 1]);
            n = next;
        }
        for i in all {
            assert_eq!(Edn::Int(i).to_string(), format!("{i}"));
        }
    }

    #[test]
    fn pretty_breaks_long_maps() {
        let inner = Edn::kw_map((0..10).map(|i| {
            (
                ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][i],
                Edn::Int(i as i64),
            )
        }));
        let v = Edn::kw_map([("inner", inner.clone()), ("valid?", Edn::Bool(true))]);
        let p = v.pretty();
        assert!(p.lines().count() > 1, "{p}");
        assert_eq!(parse(&p).unwrap(), v);
    }

    fn edn_strategy() -> impl Strategy<Value = Edn> {
        let leaf = prop_oneof![
            Just(Edn::Nil),
            any::<bool>().prop_map(Edn::Bool),
            any::<i64>().prop_map(Edn::Int),
            (-1e9f64..1e9).prop_map(Edn::Float),
            "[ -~]{0,8}".prop_map(Edn::Str),
            "[a-z][a-z0-9?-]{0,6}".prop_map(Edn::Keyword),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Edn::Vector),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Edn::Map),
            ]
        })
    }

    #[test]
    fn values_order_by_kind_then_by_value() {
        let v = |text: &str| parse(text).unwrap();
        assert_eq!(Edn::Int(1).cmp(&Edn::Float(1.0)), Ordering::Equal);
        assert!(Edn::Float(0.5) < Edn::Int(1) && Edn::Int(1) < Edn::Float(1.5));
        assert!(
            Edn::Int((1 << 53) + 1) > Edn::Float((1u64 << 53) as f64),
            "exactly"
        );
        assert!(Edn::Float(f64::NAN) > Edn::Int(i64::MAX));
        assert_eq!(
            v(r#"{"a" 1, "b" [1 2]}"#).cmp(&v(r#"{"b" [1 2.0], "a" 1}"#)),
            Ordering::Equal,
            "maps whatever their order"
        );
        assert_eq!(v("#{1 2}").cmp(&v("#{2 1}")), Ordering::Equal);
        assert!(v("[1 2]") < v("[1 10]"), "element by element");
        let kinds = [
            "nil", "false", "true", "-5", "5", r#""5""#, ":a", "[]", "#{}", "{}", "#t 1",
        ];
        for pair in kinds.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    /// Values where numbers of both kinds and equal values are frequent.
    fn clashing_strategy() -> impl Strategy<Value = Edn> {
        let leaf = prop_oneof![
            Just(Edn::Nil),
            any::<bool>().prop_map(Edn::Bool),
            (-3i64..3).prop_map(Edn::Int),
            (-6i64..6).prop_map(|h| Edn::Float(h as f64 / 2.0)),
            Just(Edn::Float(f64::NAN)),
            "[ab]{0,2}".prop_map(Edn::Str),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Edn::Vector),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Edn::Set),
                proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Edn::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_order_is_total(mut values in proptest::collection::vec(clashing_strategy(), 0..12)) {
            for a in &values {
                prop_assert_eq!(a.cmp(a), Ordering::Equal);
                for b in &values {
                    prop_assert_eq!(a.cmp(b), b.cmp(a).reverse());
                }
            }
            // Transitive: after sorting, every earlier value is at most every later one.
            values.sort();
            for (i, a) in values.iter().enumerate() {
                for b in &values[i..] {
                    prop_assert!(a <= b, "{} > {}", a, b);
                }
            }
        }

        #[test]
        fn print_then_parse_round_trips(v in edn_strategy()) {
            prop_assert_eq!(parse(&v.to_string()).unwrap(), v.clone());
            prop_assert_eq!(parse(&v.pretty()).unwrap(), v);
        }
    }
}
