//! `maelstrom serve`: browse the store over HTTP, as real Maelstrom's `serve` does
//! (docs/report.md). `/` lists every run, newest first, coloured by validity; a run's
//! folder lists its files (images shown, text files previewed); files are served with
//! their content types; `/compare?a=<run>&b=<run>` puts two runs side by side. Requests
//! are parsed by `tiny_http`; only files under the store are served.

use std::fmt::Write;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use tiny_http::{Header, Response, Server};

use super::index::validity_colour;
use super::svg::escape;
use crate::edn::{self, Edn};
use crate::summary::summarize;

/// Bytes of a text file shown in a folder's listing.
const PREVIEW_BYTES: usize = 4096;

const STYLE: &str = "<style>body { font-family: sans-serif; margin: 16px; } \
    table { border-collapse: collapse; } td, th { padding: 4px 10px; text-align: left; } \
    pre { background: #f6f6f6; padding: 8px; max-height: 24em; overflow: auto; white-space: pre-wrap; } \
    img { max-width: 100%; border: 1px solid #ddd; } \
    .side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }</style>";

/// Serves `root` on `host:port` until the process is stopped. Prints the address it
/// listens on first (port 0 picks a free one).
pub fn run(root: &Path, host: &str, port: u16) -> Result<(), String> {
    let server =
        Server::http((host, port)).map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or(format!("{host}:{port}"), |a| a.to_string());
    println!("Serving {} at http://{addr}/", root.display());
    for request in server.incoming_requests() {
        let (status, content_type, body) = respond(root, request.url());
        let header = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
            .expect("content types are valid header values");
        let _ = request.respond(
            Response::from_data(body)
                .with_status_code(status)
                .with_header(header),
        );
    }
    Ok(())
}

/// A response to `url`: status, content type and body.
pub fn respond(root: &Path, url: &str) -> (u16, String, Vec<u8>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = percent_decode(path);
    let html = |body: String| {
        (
            200,
            "text/html; charset=utf-8".to_string(),
            body.into_bytes(),
        )
    };
    if path == "/" {
        return html(runs_page(root));
    }
    if path == "/compare" {
        let get = |key: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(percent_decode)
                .unwrap_or_default()
        };
        return html(compare_page(root, &get("a"), &get("b")));
    }
    let Some(file) = resolve(root, &path) else {
        return not_found();
    };
    if file.is_dir() {
        if !path.ends_with('/') {
            return html(format!(
                "<!DOCTYPE html><meta http-equiv=\"refresh\" content=\"0; url={}/\">",
                escape(&path)
            ));
        }
        return html(folder_page(&file, &path));
    }
    match std::fs::read(&file) {
        Ok(bytes) => (200, content_type(&file).to_string(), bytes),
        Err(_) => not_found(),
    }
}

fn not_found() -> (u16, String, Vec<u8>) {
    (
        404,
        "text/plain; charset=utf-8".into(),
        b"not found\n".to_vec(),
    )
}

/// The file under `root` that `path` names, if it is one: no `..`, and after following
/// links it must still be under the store.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let file = root.join(relative).canonicalize().ok()?;
    file.starts_with(&root).then_some(file)
}

pub fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "edn" | "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One run of the store: `workload/stamp`, and its results if readable.
struct Run {
    name: String,
    results: Option<Edn>,
}

/// Every run folder under `root` (`<workload>/<stamp>/`, links left out), newest first.
fn runs(root: &Path) -> Vec<Run> {
    let mut runs = Vec::new();
    let folders = |dir: &Path| -> Vec<(String, PathBuf)> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect()
    };
    for (workload, dir) in folders(root) {
        for (stamp, run) in folders(&dir) {
            let results = std::fs::read_to_string(run.join("results.edn"))
                .ok()
                .and_then(|text| edn::parse(&text).ok());
            runs.push((
                stamp.clone(),
                Run {
                    name: format!("{workload}/{stamp}"),
                    results,
                },
            ));
        }
    }
    runs.sort_by(|a, b| b.0.cmp(&a.0));
    runs.into_iter().map(|(_, run)| run).collect()
}

fn runs_page(root: &Path) -> String {
    let runs = runs(root);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Maelstrom runs</title>{STYLE}</head><body>\n\
         <h1>Runs in {}</h1>\n",
        escape(&root.display().to_string())
    );
    // By default, the newest run against the one before it.
    let options = |selected: usize| -> String {
        runs.iter()
            .enumerate()
            .map(|(i, r)| {
                let mark = if i == selected { " selected" } else { "" };
                format!("<option value=\"{0}\"{mark}>{0}</option>", escape(&r.name))
            })
            .collect()
    };
    let _ = write!(
        out,
        "<form id=\"compare\" action=\"/compare\">Compare <select name=\"a\">{}</select> \
         with <select name=\"b\">{}</select> <button type=\"submit\">side by side</button></form>\n\
         <table id=\"runs\"><tr><th>run</th><th>valid?</th><th>figures</th><th></th></tr>\n",
        options(0),
        options(1)
    );
    for run in &runs {
        let valid = run.results.as_ref().and_then(|r| r.get("valid?"));
        let figures = run
            .results
            .as_ref()
            .map_or(String::new(), |r| summarize(r).to_string());
        let _ = writeln!(
            out,
            "<tr class=\"run\" style=\"background:{0}\"><td><a href=\"/{1}/\">{1}</a></td><td>{2}</td><td>{3}</td><td><a href=\"/{1}/index.html\">report</a></td></tr>",
            validity_colour(valid),
            escape(&run.name),
            escape(&valid.map_or("-".into(), Edn::to_string)),
            escape(&figures),
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

fn folder_page(dir: &Path, path: &str) -> String {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    entries.sort();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>{STYLE}</head><body>\n\
         <h1>{0}</h1>\n<p><a href=\"/\">all runs</a></p>\n<ul id=\"files\">\n",
        escape(path)
    );
    for (name, _) in &entries {
        let _ = writeln!(out, "<li><a href=\"{0}\">{0}</a></li>", escape(name));
    }
    out.push_str("</ul>\n");
    for (name, file) in &entries {
        if file.is_dir() {
            continue;
        }
        let kind = content_type(file);
        if kind.starts_with("image/") {
            let _ = writeln!(
                out,
                "<h2>{0}</h2>\n<img src=\"{0}\" alt=\"{0}\">",
                escape(name)
            );
        } else if kind.starts_with("text/plain") || kind == "application/json" {
            let mut head = Vec::new();
            if let Ok(f) = std::fs::File::open(file) {
                let _ = f.take(PREVIEW_BYTES as u64).read_to_end(&mut head);
            }
            let _ = writeln!(
                out,
                "<h2>{}</h2>\n<pre>{}</pre>",
                escape(name),
                escape(&String::from_utf8_lossy(&head))
            );
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn compare_page(root: &Path, a: &str, b: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0} vs {1}</title>{STYLE}</head><body>\n\
         <h1>{0} vs {1}</h1>\n<p><a href=\"/\">all runs</a></p>\n<div class=\"side\">\n",
        escape(a),
        escape(b)
    );
    for name in [a, b] {
        let results = resolve(root, name)
            .and_then(|dir| std::fs::read_to_string(dir.join("results.edn")).ok())
            .and_then(|text| edn::parse(&text).ok());
        let valid = results.as_ref().and_then(|r| r.get("valid?"));
        let _ = writeln!(
            out,
            "<div class=\"run\"><h2 style=\"background:{0}\"><a href=\"/{1}/\">{1}</a></h2>\n<pre>{2}</pre>",
            validity_colour(valid),
            escape(name),
            escape(
                &results
                    .as_ref()
                    .map_or("no results".into(), |r| summarize(r).to_string())
            ),
        );
        for plot in [
            "latency-raw.svg",
            "latency-quantiles.svg",
            "rate.svg",
            "membership.svg",
        ] {
            let _ = writeln!(out, "<img src=\"/{}/{plot}\" alt=\"{plot}\">", escape(name));
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_to_leave_the_store() {
        assert_eq!(percent_decode("/a%2Bb/%zz"), "/a+b/%zz");
        let root = std::env::temp_dir();
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(content_type(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(
            content_type(Path::new("results.edn")),
            "text/plain; charset=utf-8"
        );
    }
}
