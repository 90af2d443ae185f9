//! Reading EDN text: `history.edn`, and `results.edn`, ours or real Maelstrom's (tagged
//! values, ratios, `N`/`M` numbers, characters, comments and `#_` discards included).

use super::Edn;

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
