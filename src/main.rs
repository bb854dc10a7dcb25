//! The `idpsync` binary: parse the command line, set up logging and the progress display,
//! dispatch, and turn the outcome into SPEC §3's exit status.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use idpsync::cli::{Cli, LogFormat};
use idpsync::commands;
use idpsync::progress::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// mimalloc: a run at a million memberships makes millions of small allocations, about 20 %
/// faster than with the system allocator (`scripts/bench`); settings in `idpsync::alloc`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    idpsync::alloc::tune();
    #[cfg(feature = "failpoints")]
    idpsync::failpoint::arm_from_env();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Progress shows on standard error only when it is a terminal and -q is absent; log lines
    // go through the same display, so they print above the bar instead of tearing it.
    let display = Display::new(std::io::stderr().is_terminal() && !cli.quiet);
    init_logging(&cli, &display.bars);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the async runtime starts");
    let show = |step: Progress<'_>| display.show(step);
    let outcome = runtime.block_on(commands::run(&cli, &show));
    display.bar.finish_and_clear();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(commands::exit_code_of(&error))
        }
    }
}

/// The terminal's view of a run: what each IdP read, then the changes planned and applied.
struct Display {
    bars: MultiProgress,
    bar: ProgressBar,
    /// One line per IdP: `corp: 30 users, 8 groups`, or `corp: reading`.
    reads: Mutex<Vec<(String, String)>>,
}

impl Display {
    fn new(terminal: bool) -> Display {
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bars = MultiProgress::with_draw_target(target);
        let bar = bars.add(ProgressBar::new_spinner());
        if terminal {
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        Display {
            bars,
            bar,
            reads: Mutex::new(Vec::new()),
        }
    }

    fn show(&self, step: Progress<'_>) {
        let mut reads = self
            .reads
            .lock()
            .expect("the display lock is never poisoned");
        let mut set = |idp: &str, text: String| match reads.iter_mut().find(|(n, _)| n == idp) {
            Some(entry) => entry.1 = text,
            None => reads.push((idp.to_owned(), text)),
        };
        match step {
            Progress::Reading { idp } => set(idp.as_str(), "reading".into()),
            Progress::Read { idp, users, groups } => {
                set(idp.as_str(), format!("{users} users, {groups} groups read"))
            }
            Progress::Planned { changes } => {
                self.bar.set_message(format!("{changes} changes planned"));
                return;
            }
            Progress::Applying { done, total } => {
                if self.bar.length() != Some(total) {
                    self.bar.set_style(
                        ProgressStyle::with_template(
                            "applying {bar:30} {pos}/{len} changes ({elapsed})",
                        )
                        .expect("the template is valid"),
                    );
                    self.bar.set_length(total);
                }
                self.bar.set_position(done);
                return;
            }
            Progress::Done => {
                self.bar.finish_and_clear();
                return;
            }
        }
        let line: Vec<String> = reads.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        self.bar.set_message(line.join("; "));
    }
}

fn init_logging(cli: &Cli, bars: &MultiProgress) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IDPSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("idpsync={level},warn")));
    let writer =
        tracing_indicatif::writer::IndicatifWriter::<tracing_indicatif::writer::Stderr>::new(
            bars.clone(),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idpsync::model::IdpName;

    /// What the bar says as a run goes: each IdP's read counts, then the plan, then a bar of
    /// changes applied of the total, cleared at the end.
    #[test]
    fn the_display_shows_the_counts_of_each_step() {
        let display = Display::new(false);
        let (corp, ldap) = (
            IdpName::parse("corp").unwrap(),
            IdpName::parse("ldap").unwrap(),
        );
        display.show(Progress::Reading { idp: &corp });
        display.show(Progress::Reading { idp: &ldap });
        assert_eq!(display.bar.message(), "corp: reading; ldap: reading");
        display.show(Progress::Read {
            idp: &corp,
            users: 30,
            groups: 8,
        });
        assert_eq!(
            display.bar.message(),
            "corp: 30 users, 8 groups read; ldap: reading"
        );
        display.show(Progress::Planned { changes: 55 });
        assert_eq!(display.bar.message(), "55 changes planned");
        display.show(Progress::Applying {
            done: 20,
            total: 55,
        });
        assert_eq!(
            (display.bar.position(), display.bar.length()),
            (20, Some(55))
        );
        display.show(Progress::Done);
        assert!(display.bar.is_finished());
    }
}
