//! The report in a real browser: headless Chromium (Debian's `chromium`) loads a fresh
//! run's `index.html` and the pages of `maelstrom serve`, takes screenshots, and the test
//! checks that each page rendered: a screenshot that is not blank, no console messages
//! (our pages log nothing, so any is an error), and the expected elements in the DOM.
//!
//! Without `chromium` on the PATH the test is skipped with a notice, unless
//! `REQUIRE_BROWSER=1` (as `.ci/run` sets it), when it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{RUNNER, finish, fixture_broadcast, strings};

fn chromium() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("chromium"))
        .find(|p| p.is_file())
}

/// Loads `url` in headless Chromium: its DOM after scripts ran, and a screenshot at
/// `shot`. Fails on any console message.
fn load(browser: &Path, work: &Path, url: &str, shot: &Path) -> String {
    let dom = chromium_run(browser, work, url, "--dump-dom");
    chromium_run(
        browser,
        work,
        url,
        &format!("--screenshot={}", shot.display()),
    );
    assert_not_blank(shot);
    dom
}

/// One Chromium process (a fresh profile each, so that no two share one), with two retries
/// if it hangs: headless Chromium on a loaded machine now and then never exits. `--timeout`
/// makes it stop loading after 20 s and act on what it has (our pages are local and small).
fn chromium_run(browser: &Path, work: &Path, url: &str, action: &str) -> String {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for attempt in 1..=3 {
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let child = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,1600",
                "--timeout=20000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.join(format!("profile-{n}")).display()
            ))
            .arg(action)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let started = Instant::now();
        let Some((out, err)) = finish(child, Duration::from_secs(60)) else {
            eprintln!("chromium hung on {url} {action} (attempt {attempt})");
            continue;
        };
        println!("{url} {action}: {:.1} s", started.elapsed().as_secs_f64());
        let console: Vec<&str> = err.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{url}: console messages: {console:#?}");
        return out;
    }
    panic!("chromium hung three times on {url} {action}");
}

/// The screenshot shows something: several colours, and a good share of pixels that are
/// not the background's (the top-left pixel's).
fn assert_not_blank(png_file: &Path) {
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(png_file).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let step = info.color_type.samples();
    let pixels: Vec<&[u8]> = pixels[..info.buffer_size()].chunks(step).collect();
    let background = pixels[0];
    let different = pixels.iter().filter(|p| **p != background).count();
    let colours: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    assert!(
        different * 100 > pixels.len() && colours.len() > 16,
        "{} looks blank: {different} of {} pixels differ from the background, {} colours",
        png_file.display(),
        pixels.len(),
        colours.len()
    );
}

/// A plain GET to the server: status line and headers, lower-cased.
fn head(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split("\r\n\r\n").next().unwrap_or("").to_lowercase()
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pages_render_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)");
        }
        // Straight to stderr, not through `eprintln!`, which the test harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "\n==================================================================\n\
             SKIPPED: the browser test needs Debian's `chromium` on the PATH\n\
             (apt-get install chromium); set REQUIRE_BROWSER=1 to make this fail.\n\
             ==================================================================\n"
        );
        return;
    };
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&work);
    let store = work.join("store");
    // A fresh store with two runs, one with partitions.
    for (seed, nemesis) in [("5", "none"), ("6", "partition")] {
        let opts = format!(
            "--node-count 3 --time-limit 3 --rate 20 --nemesis {nemesis} --nemesis-interval 1 \
             --seed {seed}"
        );
        let mut argv = strings(&["maelstrom", "test", "--store", store.to_str().unwrap()]);
        argv.extend(fixture_broadcast(&opts, "broadcast"));
        let code = maelstrom::cli::main(argv);
        // The fixture floods each value once, so partitions may make it lose some.
        assert!(
            code == 0 || (nemesis == "partition" && code == 1),
            "exit {code}"
        );
    }
    let run = store.join("latest").canonicalize().unwrap();

    let dom = load(
        &browser,
        &work,
        &format!("file://{}", run.join("index.html").display()),
        &work.join("index.png"),
    );
    for expected in [
        "data-ready=\"true\"",
        "id=\"verdict\"",
        "<img class=\"plot\" src=\"latency-raw.svg\"",
        "<img class=\"plot\" src=\"membership.svg\"",
        "class=\"msg\"",
        "messages shown",
    ] {
        assert!(dom.contains(expected), "index.html's DOM has {expected}");
    }

    // The diagram filtered to one node by the page's fragment: only its arrows stay.
    let dom = load(
        &browser,
        &work,
        &format!("file://{}#node=n1", run.join("index.html").display()),
        &work.join("index-n1.png"),
    );
    let arrows: Vec<&str> = dom
        .split("<g class=\"msg\"")
        .skip(1)
        .map(|a| a.split('>').next().unwrap())
        .collect();
    let shown: Vec<&&str> = arrows
        .iter()
        .filter(|a| !a.contains("display: none"))
        .collect();
    assert!(
        !shown.is_empty() && shown.len() < arrows.len(),
        "{} of {}",
        shown.len(),
        arrows.len()
    );
    for a in shown {
        assert!(
            a.contains("data-src=\"n1\"") || a.contains("data-dest=\"n1\""),
            "{a}"
        );
    }
    assert!(dom.contains(&format!("of {} messages shown", arrows.len())));

    let server = Command::new(RUNNER)
        .args(["serve", "--port", "0", "--store"])
        .arg(&store)
        .stdout(Stdio::piped())
        .spawn()
        .expect("maelstrom serve starts");
    let mut server = Server(server);
    let mut line = String::new();
    BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit_once("http://")
        .map(|(_, a)| a.trim_end_matches('/').to_string())
        .unwrap_or_else(|| panic!("serve printed {line:?}"));

    let dom = load(
        &browser,
        &work,
        &format!("http://{addr}/"),
        &work.join("serve.png"),
    );
    assert_eq!(
        dom.matches("<tr class=\"run\"").count(),
        2,
        "both runs listed"
    );
    assert!(dom.contains("background:#6DB6FE"), "the valid run is blue");
    let runs: Vec<String> = dom
        .match_indices("<a href=\"/broadcast/")
        .map(|(at, _)| {
            dom[at + 10..]
                .split('"')
                .next()
                .unwrap()
                .trim_matches('/')
                .to_string()
        })
        .filter(|r| !r.ends_with("index.html"))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[0] > runs[1], "newest first: {runs:?}");

    let dom = load(
        &browser,
        &work,
        &format!("http://{addr}/{}/", runs[0]),
        &work.join("folder.png"),
    );
    assert!(dom.contains("<img src=\"rate.svg\""), "images shown");
    assert!(dom.contains("<pre>"), "text files previewed");

    let dom = load(
        &browser,
        &work,
        &format!("http://{addr}/compare?a={}&b={}", runs[0], runs[1]),
        &work.join("compare.png"),
    );
    assert_eq!(
        dom.matches("<div class=\"run\">").count(),
        2,
        "side by side"
    );

    for (file, kind) in [
        ("messages.svg", "image/svg+xml"),
        ("index.html", "text/html"),
        ("results.edn", "text/plain"),
        ("results.json", "application/json"),
    ] {
        let headers = head(&addr, &format!("/{}/{file}", runs[0]));
        assert!(headers.starts_with("http/1.1 200"), "{file}: {headers}");
        assert!(
            headers.contains(&format!("content-type: {kind}")),
            "{file}: {headers}"
        );
    }
    assert!(head(&addr, "/../../etc/passwd").starts_with("http/1.1 404"));
    println!("screenshots in {}", work.display());
}
