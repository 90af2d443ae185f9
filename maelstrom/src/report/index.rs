//! `index.html`: a run's page (docs/report.md): the verdict and the figures of
//! `maelstrom summarize`, every plot inline, links to the other files, and the message
//! diagram with a few lines of script to filter it to one node or a time window.

use std::fmt::Write;
use std::path::Path;

use super::svg::escape;
use crate::edn::Edn;
use crate::summary::summarize;

/// The colours of Maelstrom's `serve` page, by validity.
pub fn validity_colour(valid: Option<&Edn>) -> &'static str {
    match valid {
        Some(Edn::Bool(true)) => "#6DB6FE",
        Some(Edn::Bool(false)) => "#FEB5DA",
        Some(_) => "#FFAA26",
        None => "#eaeaea",
    }
}

const PLOTS: [(&str, &str); 4] = [
    ("latency-raw.svg", "Raw latency"),
    ("latency-quantiles.svg", "Latency quantiles"),
    ("rate.svg", "Throughput"),
    ("membership.svg", "Membership"),
];

const LINKS: [&str; 8] = [
    "messages.svg",
    "timeline.html",
    "history.txt",
    "history.edn",
    "results.edn",
    "results.json",
    "jepsen.log",
    "node-logs/",
];

/// The script that filters the inline diagram: a node (as sender or receiver) and a
/// window of history time in ms, set by hand or by the page's fragment.
const FILTER_SCRIPT: &str = r#"
(function () {
  const arrows = Array.from(document.querySelectorAll('#diagram g.msg'));
  const node = document.getElementById('node');
  const from = document.getElementById('from');
  const to = document.getElementById('to');
  const count = document.getElementById('shown');
  const ids = new Set();
  arrows.forEach(g => { ids.add(g.dataset.src); ids.add(g.dataset.dest); });
  Array.from(ids).sort().forEach(id => node.add(new Option(id, id)));
  function filter() {
    const n = node.value, a = parseFloat(from.value), b = parseFloat(to.value);
    let shown = 0;
    arrows.forEach(g => {
      const keep = (!n || g.dataset.src === n || g.dataset.dest === n)
        && (isNaN(a) || parseFloat(g.dataset.t1) >= a)
        && (isNaN(b) || parseFloat(g.dataset.t0) <= b);
      g.style.display = keep ? '' : 'none';
      if (keep) shown++;
    });
    count.textContent = shown + ' of ' + arrows.length + ' messages shown';
  }
  // A link can carry a filter: index.html#node=n1&from=1000&to=2000
  const wanted = new URLSearchParams(location.hash.slice(1));
  if (wanted.has('node')) node.value = wanted.get('node');
  if (wanted.has('from')) from.value = wanted.get('from');
  if (wanted.has('to')) to.value = wanted.get('to');
  [node, from, to].forEach(e => e.addEventListener('input', filter));
  filter();
  document.body.dataset.ready = 'true';
})();
"#;

pub fn draw(
    dir: &Path,
    title: &str,
    results: &Edn,
    parts: &[(&str, Result<(), String>)],
) -> String {
    let drawn = |file: &str| parts.iter().any(|(f, r)| *f == file && r.is_ok());
    let valid = results.get("valid?");
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 16px; }}\n\
         #verdict {{ display: inline-block; padding: 6px 12px; border-radius: 4px; background: {colour}; font-weight: bold; }}\n\
         .plot {{ max-width: 100%; border: 1px solid #ddd; margin: 4px 0 12px; }}\n\
         .error {{ color: #b00; }}\n\
         #diagram {{ overflow: auto; max-height: 80vh; border: 1px solid #ddd; }}\n\
         pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; }}\n\
         </style></head><body>\n<h1>{t}</h1>\n<p id=\"verdict\">valid? {v}</p>\n<pre id=\"summary\">{s}</pre>\n",
        t = escape(title),
        colour = validity_colour(valid),
        v = escape(&valid.map_or("unknown".into(), Edn::to_string)),
        s = escape(&summarize(results).to_string()),
    );
    out.push_str("<h2>Files</h2>\n<ul id=\"links\">\n");
    // The results and the log are written after this page; the drawings only if drawn.
    for link in LINKS {
        if !link.ends_with(".svg") && !link.ends_with(".html") || drawn(link) {
            let _ = writeln!(out, "<li><a href=\"{0}\">{0}</a></li>", escape(link));
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("node-logs")) {
        let mut logs: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        logs.sort();
        for log in logs {
            let _ = writeln!(
                out,
                "<li><a href=\"node-logs/{0}\">node-logs/{0}</a></li>",
                escape(&log)
            );
        }
    }
    out.push_str("</ul>\n");
    for (file, result) in parts {
        if let Err(why) = result {
            let _ = writeln!(
                out,
                "<p class=\"error\">Could not draw {}: {}</p>",
                escape(file),
                escape(why)
            );
        }
    }
    for (file, caption) in PLOTS {
        if drawn(file) {
            let _ = writeln!(
                out,
                "<h2>{caption}</h2>\n<img class=\"plot\" src=\"{file}\" alt=\"{caption}\">"
            );
        }
    }
    let diagram = drawn("messages.svg")
        .then(|| std::fs::read_to_string(dir.join("messages.svg")).ok())
        .flatten();
    if let Some(svg) = diagram {
        let svg = svg.find("<svg").map_or("", |at| &svg[at..]);
        let _ = write!(
            out,
            "<h2>Messages</h2>\n<p>Node <select id=\"node\"><option value=\"\">all</option></select> \
             from <input id=\"from\" type=\"number\" placeholder=\"ms\" size=\"8\"> \
             to <input id=\"to\" type=\"number\" placeholder=\"ms\" size=\"8\"> ms of the history \
             <span id=\"shown\"></span> (<a href=\"messages.svg\">full diagram</a>)</p>\n\
             <div id=\"diagram\">{svg}</div>\n<script>{FILTER_SCRIPT}</script>\n"
        );
    } else {
        out.push_str("<script>document.body.dataset.ready = 'true';</script>\n");
    }
    let _ = write!(
        out,
        "<h2>Results</h2>\n<pre id=\"results\">{}</pre>\n</body></html>\n",
        escape(&results.pretty())
    );
    out
}
