//! The real binary run with failpoints armed (`IDPSYNC_FAILPOINTS`, see `src/failpoint.rs`): a
//! test waits until the process stands at a named point, then SIGKILLs it there, or lets it go on.
//!
//! Only a build with `--features failpoints` (what `scripts/test` runs) has the points; tests that
//! need them are ignored otherwise, saying why.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{Env, Outcome};

/// How long a test waits for the binary to reach a point before it calls the run hung.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running `idpsync` with failpoints armed.
pub struct Armed {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Vec<String>,
    stdout: Option<JoinHandle<String>>,
}

impl Armed {
    /// Starts `idpsync <args>` in `env` with `IDPSYNC_FAILPOINTS=failpoints`.
    pub fn spawn(env: &Env, args: &[&str], failpoints: &str) -> Armed {
        let mut command = env.command();
        command
            .args(args)
            .env("IDPSYNC_FAILPOINTS", failpoints)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let err = child.stderr.take().expect("stderr is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Armed {
            child,
            stdin,
            lines,
            stderr: Vec::new(),
            stdout: Some(stdout),
        }
    }

    /// Waits until the process announces `failpoint <point> reached`; `false` when it ended
    /// without reaching it.
    pub fn reached(&mut self, point: &str) -> bool {
        let wanted = format!("failpoint {point} reached");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    let found = line == wanted;
                    self.stderr.push(line);
                    if found {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return false,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "the run did not reach {point} (a hung test, not a slow one); stderr so far:\n{}",
                    self.stderr.join("\n")
                ),
            }
        }
    }

    /// Lets a process paused at a `pause` point go on.
    pub fn resume(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// SIGKILLs the process (wherever it is) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }

    /// Waits for the process to exit by itself; its status and output.
    pub fn finish(mut self) -> Outcome {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        self.stderr.extend(self.lines.iter());
        Outcome {
            code: status.code().expect("the binary exits normally"),
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.join("\n"),
        }
    }
}
