//! The latest lines of the server's log files, for the dashboard's log view. The files are the
//! daily ones `logging` writes (`hearth.YYYY-MM-DD.log`); only the end of the newest is read.

use std::{
    io::{Read, Seek, SeekFrom},
    path::Path,
};

use serde::Serialize;

/// How much of the newest file is read at most.
const TAIL_BYTES: u64 = 512 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct LogLine {
    pub level: Option<Level>,
    pub text: String,
}

/// The last `limit` lines at `min` level or above from the newest log file in `dir`, oldest
/// first. A line's level is the second field of `tracing`'s format (after the timestamp); lines
/// without one (continuations of a multi-line message) follow the line before.
pub fn tail(dir: &Path, min: Level, limit: usize) -> std::io::Result<Vec<LogLine>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("hearth.") && n.ends_with(".log"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // Daily names sort by date.
    files.sort();
    let Some(newest) = files.last() else { return Ok(Vec::new()) };
    let mut file = std::fs::File::open(newest)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if start > 0 {
        lines.next(); // probably cut in the middle
    }
    let mut out = Vec::new();
    let mut keep_previous = false;
    for line in lines {
        let level = line.split_whitespace().nth(1).and_then(Level::parse);
        let keep = match level {
            Some(l) => l >= min,
            None => keep_previous,
        };
        keep_previous = keep;
        if keep && !line.trim().is_empty() {
            out.push(LogLine { level, text: line.to_owned() });
        }
    }
    let skip = out.len().saturating_sub(limit);
    Ok(out.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_file_filtered_by_level_newest_lines_last() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hearth.2026-11-25.log"), "2026-11-25T10:00:00Z ERROR old: yesterday\n")
            .unwrap();
        std::fs::write(
            dir.path().join("hearth.2026-11-26.log"),
            "2026-11-26T10:00:00Z  INFO a: started\n2026-11-26T10:00:01Z  WARN b: disk almost full\n  continued\n\
             2026-11-26T10:00:02Z DEBUG c: detail\n2026-11-26T10:00:03Z ERROR d: broken\n",
        )
        .unwrap();
        let texts = |l: Vec<LogLine>| l.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(
            texts(tail(dir.path(), Level::Warn, 100).unwrap()),
            ["2026-11-26T10:00:01Z  WARN b: disk almost full", "  continued", "2026-11-26T10:00:03Z ERROR d: broken"]
        );
        assert_eq!(
            texts(tail(dir.path(), Level::Trace, 2).unwrap()),
            ["2026-11-26T10:00:02Z DEBUG c: detail", "2026-11-26T10:00:03Z ERROR d: broken"]
        );
        assert!(tail(&dir.path().join("missing"), Level::Info, 10).unwrap().is_empty());
    }
}
