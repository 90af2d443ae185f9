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

impl std::fmt::Display for Edn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => f.write_str(&float(*x)),
            Edn::Str(s) => write_string(f, s),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Vector(items) => write_seq(f, "[", items, "]"),
            Edn::Set(items) => write_seq(f, "#{", items, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
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

fn write_string(f: &mut std::fmt::Formatter<'_>, s: &str) -> std::fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_seq(
    f: &mut std::fmt::Formatter<'_>,
    open: &str,
    items: &[Edn],
    close: &str,
) -> std::fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{item}")?;
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
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Eq for Edn {}

/// A total order for sorting and set membership: numbers by value, then by printed form.
impl Ord for Edn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Edn::Int(a), Edn::Int(b)) => a.cmp(b),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => a.to_string().cmp(&b.to_string()),
            },
        }
    }
}

/// Reads one EDN value (the first; trailing whitespace allowed).
pub fn parse(text: &str) -> Result<Edn, String> {
    let mut reader = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    let value = reader.value()?.ok_or("no value")?;
    reader.skip();
    if reader.i < reader.s.len() {
        return Err(format!("trailing text at byte {}", reader.i));
    }
    Ok(value)
}

/// Reads every EDN value of a text (e.g. `history.edn`, one op per line).
pub fn parse_all(text: &str) -> Result<Vec<Edn>, String> {
    let mut reader = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    while let Some(v) = reader.value()? {
        out.push(v);
    }
    Ok(out)
}

/// A small recursive-descent EDN reader. Symbols read as strings.
struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || c == b',' {
                self.i += 1;
            } else if c == b';' {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    /// The next value, or `None` at the end of input.
    fn value(&mut self) -> Result<Option<Edn>, String> {
        self.skip();
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let v = match c {
            b'{' => {
                self.i += 1;
                let items = self.until(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(self.error("odd number of map forms"));
                }
                let mut it = items.into_iter();
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Edn::Map(entries)
            }
            b'[' | b'(' => {
                self.i += 1;
                Edn::Vector(self.until(if c == b'[' { b']' } else { b')' })?)
            }
            b'"' => Edn::Str(self.string()?),
            b':' => {
                self.i += 1;
                Edn::Keyword(self.token())
            }
            b'\\' => {
                self.i += 1;
                let start = self.i;
                self.i += 1;
                let rest = self.token();
                let raw = format!("{}{rest}", self.s[start] as char);
                Edn::Str(match raw.as_str() {
                    "newline" => "\n".into(),
                    "space" => " ".into(),
                    "tab" => "\t".into(),
                    _ => raw,
                })
            }
            b'#' => {
                self.i += 1;
                match self.peek() {
                    Some(b'{') => {
                        self.i += 1;
                        Edn::Set(self.until(b'}')?)
                    }
                    Some(b'_') => {
                        self.i += 1;
                        self.value()?
                            .ok_or_else(|| self.error("nothing to discard"))?;
                        return self.value();
                    }
                    Some(b'#') => {
                        self.i += 1;
                        match self.token().as_str() {
                            "NaN" => Edn::Float(f64::NAN),
                            "Inf" => Edn::Float(f64::INFINITY),
                            "-Inf" => Edn::Float(f64::NEG_INFINITY),
                            other => return Err(self.error(&format!("unknown ##{other}"))),
                        }
                    }
                    _ => {
                        let tag = self.token();
                        let inner = self
                            .value()?
                            .ok_or_else(|| self.error("tag without value"))?;
                        Edn::Tagged(tag, Box::new(inner))
                    }
                }
            }
            b'}' | b']' | b')' => return Err(self.error("unexpected closing bracket")),
            _ => {
                let token = self.token();
                if token.is_empty() {
                    return Err(self.error("unexpected character"));
                }
                atom(&token)
            }
        };
        Ok(Some(v))
    }

    fn until(&mut self, close: u8) -> Result<Vec<Edn>, String> {
        let mut items = Vec::new();
        loop {
            self.skip();
            match self.peek() {
                None => return Err(self.error("unclosed collection")),
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => items.push(
                    self.value()?
                        .ok_or_else(|| self.error("unclosed collection"))?,
                ),
            }
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || b",()[]{}\"';".contains(&c) {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unclosed string"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = self.peek().ok_or_else(|| self.error("dangling escape"))?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = std::str::from_utf8(
                                self.s.get(self.i..self.i + 4).unwrap_or_default(),
                            )
                            .map_err(|_| self.error("bad unicode escape"))?;
                            let code = u32::from_str_radix(hex, 16)
                                .map_err(|_| self.error("bad unicode escape"))?;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                            self.i += 4;
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Numbers, nil, booleans; anything else is a symbol (read as a string).
fn atom(token: &str) -> Edn {
    match token {
        "nil" => return Edn::Nil,
        "true" => return Edn::Bool(true),
        "false" => return Edn::Bool(false),
        _ => {}
    }
    let number = token.trim_end_matches(['N', 'M']);
    if let Ok(i) = number.parse::<i64>() {
        return Edn::Int(i);
    }
    if let Some((a, b)) = number.split_once('/')
        && let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>())
    {
        return Edn::Float(a / b);
    }
    if number.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        && let Ok(x) = number.parse::<f64>()
    {
        return Edn::Float(x);
    }
    Edn::Str(token.to_string())
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

    proptest! {
        #[test]
        fn print_then_parse_round_trips(v in edn_strategy()) {
            prop_assert_eq!(parse(&v.to_string()).unwrap(), v.clone());
            prop_assert_eq!(parse(&v.pretty()).unwrap(), v);
        }
    }
}
