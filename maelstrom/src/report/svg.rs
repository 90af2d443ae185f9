//! Small helpers shared by the hand-drawn files (the diagram, the timelines, the pages).

/// Escapes text for XML and HTML, attributes included.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The first `max` characters of `text`, with an ellipsis if it was cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// `c3` before `c10` before `n1` before anything else: numbers compare as numbers.
pub fn process_order(id: &str) -> (u8, u64, String) {
    let group = match id.as_bytes().first() {
        Some(b'c') => 0,
        Some(b'n') => 1,
        _ => 2,
    };
    let number = id.get(1..).and_then(|n| n.parse().ok());
    match number {
        Some(n) if group < 2 => (group, n, String::new()),
        _ => (group.max(1) + u8::from(group < 2), 0, id.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(
            escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn clients_then_nodes_then_services() {
        let mut ids = vec!["n10", "lin-kv", "c2", "n2", "c10", "nx"];
        ids.sort_by_key(|id| process_order(id));
        assert_eq!(ids, ["c2", "c10", "n2", "n10", "lin-kv", "nx"]);
    }
}
