//! The live progress line on a terminal: elapsed/limit, ok/fail/info and ops/s.

use std::io::IsTerminal;
use std::time::Duration;

/// The live progress line: elapsed/limit, ok/fail/info and ops/s. Drawn only when asked (stderr a tty).
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: std::sync::Mutex<(Duration, u64)>,
}

impl Progress {
    pub(crate) fn new(enabled: bool, limit: Duration) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(limit.as_millis() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last: std::sync::Mutex::new((Duration::ZERO, 0)),
        }
    }

    pub(crate) fn update(&self, elapsed: Duration, c: workloads::Counts) {
        let Some(bar) = &self.bar else { return };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let dt = (elapsed - last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (c.total() - last.1) as f64 / dt
        } else {
            0.0
        };
        *last = (elapsed, c.total());
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "{:.0}/{:.0} s  ok {}  fail {}  info {}  {:.0} ops/s",
            elapsed.as_secs_f64(),
            Duration::from_millis(bar.length().unwrap_or(0)).as_secs_f64(),
            c.ok,
            c.fail,
            c.info,
            rate
        ));
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
