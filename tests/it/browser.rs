//! Headless Chromium for the console's end-to-end tests, driven through `chromedriver` with
//! fantoccini (WebDriver).
//!
//! Each test starts its own chromedriver on a free loopback port and its own Chromium with a
//! fresh profile and every background connection off (`--disable-background-networking` and
//! friends; host names resolve to nothing, so only loopback addresses can be reached). Pages are
//! opened only at loopback URLs. Nothing here sleeps: every wait is for an element, with a
//! deadline. Debian's `chromium` and `chromium-driver` are required: when they are missing the
//! test fails, saying to run `scripts/test` (which installs them).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::assert_loopback;

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any wait for the browser may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// The laptop window of the screenshots.
pub(crate) const LAPTOP: (u32, u32) = (1280, 800);
/// The phone window of the phone-width screenshot.
pub(crate) const PHONE: (u32, u32) = (390, 844);

/// A headless Chromium and the chromedriver driving it, in a process group of their own; both
/// end when it is closed or dropped (a failing test included).
pub(crate) struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Panics, saying how to install them, unless Chromium and chromedriver are installed.
fn require_installed() {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the console's browser tests need Debian's {package} package; \
             run scripts/test, which installs chromium and chromium-driver when they are missing"
        );
    }
}

/// A free loopback port (the listener is closed again before chromedriver binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, at [`LAPTOP`] size.
    pub(crate) async fn start() -> Browser {
        require_installed();
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        wait_until_listening(&mut driver, port);
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": chromium_args(profile.path()),
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        assert_loopback(&url);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("chromedriver opens a Chromium session");
        let browser = Browser {
            client: Some(client),
            driver,
            _profile: profile,
        };
        browser.resize(LAPTOP).await;
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open until closed")
    }

    /// Opens `url`, which must be a loopback address.
    pub(crate) async fn goto(&self, url: &str) {
        assert_loopback(url);
        self.client().goto(url).await.expect("the page opens");
    }

    /// The URL shown.
    pub(crate) async fn url(&self) -> url::Url {
        self.client().current_url().await.unwrap()
    }

    /// Waits for the element of CSS selector `css`.
    pub(crate) async fn find(&self, css: &str) -> Element {
        let found = self
            .client()
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!(
                "no element {css:?} on {} ({e}); the page says:\n{}",
                self.url_text().await,
                self.body_text().await
            ),
        }
    }

    /// Waits for an element of XPath `xpath` (e.g. `//p[@role='status']`) whose text contains
    /// `text`.
    pub(crate) async fn find_text(&self, xpath: &str, text: &str) -> Element {
        let xpath = format!(
            "{xpath}[contains(normalize-space(.), {})]",
            xpath_literal(text)
        );
        match self
            .client()
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&xpath))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no {xpath} on {} ({e}); the page says:\n{}",
                self.url_text().await,
                self.body_text().await
            ),
        }
    }

    /// How many elements of CSS selector `css` the page has now.
    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .len()
    }

    /// Types `text` into the field of CSS selector `css`, after clearing it.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element of CSS selector `css`.
    pub(crate) async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Presses Tab in the element that has the focus, moving it to the next one.
    pub(crate) async fn press_tab(&self) {
        let focused = self.client().active_element().await.unwrap();
        focused
            .send_keys(&fantoccini::key::Key::Tab.to_string())
            .await
            .unwrap();
    }

    /// The element that has the keyboard focus.
    pub(crate) async fn focused(&self) -> Element {
        self.client().active_element().await.unwrap()
    }

    /// Evaluates `script` in the page (WebDriver's own evaluation; the page runs no script).
    pub(crate) async fn evaluate(&self, script: &str) -> serde_json::Value {
        self.client().execute(script, Vec::new()).await.unwrap()
    }

    /// The text of the page's body.
    pub(crate) async fn body_text(&self) -> String {
        match self.client().find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    async fn url_text(&self) -> String {
        match self.client().current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no URL: {e})"),
        }
    }

    /// Resizes the window so that its page area is `(width, height)` CSS pixels.
    pub(crate) async fn resize(&self, (width, height): (u32, u32)) {
        self.client()
            .set_window_size(width, height)
            .await
            .expect("the window resizes");
        let inner = self
            .evaluate("return [window.innerWidth, window.innerHeight]")
            .await;
        let (inner_width, inner_height) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        // The window's frame is what it has beyond its page area.
        self.client()
            .set_window_size(
                width + width.saturating_sub(inner_width),
                height + height.saturating_sub(inner_height),
            )
            .await
            .expect("the window resizes");
    }

    /// Saves a PNG of the window as `<name>.png` in the test build's folder, or in
    /// `docs/screenshots/` when `IDPSYNC_SCREENSHOTS=1` (the committed pictures of the README and
    /// the issues are taken that way, so a test run leaves the work tree as it was); answers its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = if std::env::var_os("IDPSYNC_SCREENSHOTS").is_some_and(|v| v == "1") {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
        } else {
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the WebDriver session (Chromium quits) and chromedriver.
    pub(crate) async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    /// Ends chromedriver's process group: chromedriver, and the Chromium it started if a failing
    /// test never closed the session.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
        if !killed.is_ok_and(|s| s.success()) {
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}

/// Chromium's switches: headless, a fresh profile, nothing it would fetch on its own.
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--disable-client-side-phishing-detection",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--hide-scrollbars",
        "--window-size=1280,800",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// Waits until chromedriver says it listens on `port` (its first line of output).
fn wait_until_listening(driver: &mut Child, port: u16) {
    let stdout = driver.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let started = line.contains("started successfully");
            if tx.send(line).is_err() || started {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) if line.contains("started successfully") => {
                assert!(line.contains(&port.to_string()), "{line}");
                return;
            }
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "chromedriver did not start on port {port}; it said:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// `text` as an XPath string literal.
fn xpath_literal(text: &str) -> String {
    if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('"').map(|p| format!("\"{p}\"")).collect();
        format!("concat({})", parts.join(", '\"', "))
    }
}
