//! The `store/` directory (docs/maelstrom-compatibility.md 7.1):
//! `store/<workload>/<timestamp>/` with the results, the histories, the node logs and the
//! runner's log, and the `latest`/`current` links.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::checker::{Validity, check_all};
use crate::edn::Edn;
use crate::harness::Outcome;
use crate::history::{History, write_history_edn, write_history_txt};
use crate::options::TestOptions;

/// One test's directory.
pub struct Store {
    pub root: PathBuf,
    pub dir: PathBuf,
    workload: String,
    stamp: String,
}

impl Store {
    /// Creates `root/<workload>/<timestamp>/` and points `root/current` at it.
    pub fn create(root: &Path, workload: &str) -> std::io::Result<Store> {
        let mut stamp = timestamp(SystemTime::now());
        let mut dir = root.join(workload).join(&stamp);
        // Two runs within a millisecond (tests) must not share a directory.
        let mut n = 1;
        while dir.exists() {
            stamp = format!("{}-{n}", timestamp(SystemTime::now()));
            dir = root.join(workload).join(&stamp);
            n += 1;
        }
        std::fs::create_dir_all(dir.join("node-logs"))?;
        let store = Store {
            root: root.to_path_buf(),
            dir,
            workload: workload.to_string(),
            stamp,
        };
        link(
            &root.join("current"),
            &Path::new(workload).join(&store.stamp),
        )?;
        Ok(store)
    }

    pub fn node_logs(&self) -> PathBuf {
        self.dir.join("node-logs")
    }

    pub fn write_history(&self, history: &History) -> std::io::Result<()> {
        std::fs::write(self.dir.join("history.edn"), write_history_edn(history))?;
        std::fs::write(self.dir.join("history.txt"), write_history_txt(history))?;
        self.link_latest()
    }

    pub fn write_results(&self, results: &Edn) -> std::io::Result<()> {
        std::fs::write(
            self.dir.join("results.edn"),
            format!("{}\n", results.pretty()),
        )?;
        let json = serde_json::to_string_pretty(&results.to_json()).expect("JSON values serialise");
        std::fs::write(self.dir.join("results.json"), format!("{json}\n"))?;
        self.link_latest()
    }

    pub fn write_log(&self, lines: &[String]) -> std::io::Result<()> {
        std::fs::write(
            self.dir.join("jepsen.log"),
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
    }

    fn link_latest(&self) -> std::io::Result<()> {
        let relative = Path::new(&self.workload).join(&self.stamp);
        link(&self.root.join("latest"), &relative)?;
        link(&self.root.join("current"), &relative)?;
        link(
            &self.root.join(&self.workload).join("latest"),
            Path::new(&self.stamp),
        )
    }
}

/// Writes a simulated run into a new folder of the store under `root`, as a run through
/// processes is written (history, results with the report's part, the report's files),
/// and returns the folder and the verdict.
pub fn write_simulated_run(
    root: &Path,
    opts: &TestOptions,
    outcome: &Outcome,
) -> std::io::Result<(PathBuf, Validity)> {
    let store = Store::create(root, opts.workload.name())?;
    store.write_history(&outcome.history)?;
    let mut results = check_all(
        opts.workload,
        &outcome.history,
        &outcome.net,
        opts.availability,
    );
    let runner = Edn::kw_map([
        ("driver", Edn::kw("simulation")),
        ("seed", Edn::Int(opts.seed as i64)),
    ]);
    if let Edn::Map(entries) = &mut results.edn {
        let at = entries.len().saturating_sub(1); // before :valid?
        entries.insert(at, (Edn::kw("runner"), runner));
    }
    let mut log = vec![format!(
        "Simulated {} with {} nodes, seed {}",
        opts.workload.name(),
        opts.nodes.len(),
        opts.seed
    )];
    log.extend(crate::report::write(
        &store.dir,
        opts,
        outcome,
        &mut results.edn,
    ));
    store.write_results(&results.edn)?;
    store.write_log(&log)?;
    Ok((store.dir, results.valid))
}

/// Replaces `at` with a symlink to `target`.
fn link(at: &Path, target: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(at);
    std::os::unix::fs::symlink(target, at)
}

/// Basic ISO 8601 in UTC, like Jepsen's store names: `20210223T093526.128+0000`.
pub fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}+0000",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_614_072_926_128);
        assert_eq!(timestamp(t), "20210223T093526.128+0000");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000+0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(timestamp(leap).starts_with("20000229T"));
    }
}
