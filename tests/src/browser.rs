//! A real headless Chromium driven over WebDriver: `chromedriver` (Debian's
//! chromium-driver, which `.ci/run` installs) started on a free port, and a
//! fantoccini client speaking to it. Both end when the [`Browser`] drops.
//! [`Site`] serves one page from another origin, as a hostile web site
//! would.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::ports::free_port;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Self {
        Self::start_with(width, height, &[]).await
    }

    /// [`start`](Self::start) with more Chromium flags, such as
    /// `--host-resolver-rules=MAP name 127.0.0.1` to give a test a domain.
    pub async fn start_with(width: u32, height: u32, flags: &[&str]) -> Self {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the console's browser tests need Debian's chromium and \
                 chromium-driver (`apt-get install chromium chromium-driver`, as .ci/run does)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--window-size={width},{height}"));
        args.extend(flags.iter().map(|f| f.to_string()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        // chromedriver answers once it listens: retry the session until then.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("cannot open a Chromium session through chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self { client, driver }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css, |_| true).await
    }

    /// Waits until an element matching `css` has text for which `wanted`
    /// holds, and returns it.
    pub async fn wait_for(&self, css: &str, wanted: impl Fn(&str) -> bool) -> Element {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if let Ok(text) = element.text().await {
                        if wanted(&text) {
                            return element;
                        }
                        last = text;
                    }
                }
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.client.current_url().await.map(|u| u.to_string());
                panic!("timed out waiting for {css} on {url:?}; last text seen: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's path (and query) is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(url) = self.client.current_url().await {
                let here = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                if here == path {
                    return;
                }
                if tokio::time::Instant::now() > deadline {
                    panic!("timed out waiting for {path}; the browser is at {here}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces the text of the input matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks `css`, finding it again if a live update replaced it between
    /// finding and clicking (a stale element).
    pub async fn click(&self, css: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) if is_stale(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    pub async fn script(&self, js: &str) -> Value {
        self.client
            .execute(js, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {js}: {e}"))
    }

    /// Runs `js` as an async script: it ends by calling its last argument
    /// (`arguments[arguments.length - 1]`) with the value to return.
    pub async fn script_async(&self, js: &str) -> Value {
        self.client
            .execute_async(js, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {js}: {e}"))
    }

    /// Whether the page fits the window's width without scrolling sideways.
    pub async fn fits_width(&self) -> bool {
        self.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// Saves a PNG of the window when `dir` is given.
    pub async fn screenshot(&self, dir: Option<&Path>, name: &str) {
        let Some(dir) = dir else { return };
        let png = self.client.screenshot().await.expect("take a screenshot");
        std::fs::create_dir_all(dir).expect("create the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }
}

impl Browser {
    /// Ends the browser session (and its Chromium), then chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The element was removed from the page after it was found.
fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    e.to_string().contains("stale element")
}

/// A web site of another origin: a loopback port serving `page` as HTML to
/// every request, until dropped. A browser sees `http://127.0.0.1:PORT` as
/// another origin than a node on another port (but the same site).
pub struct Site {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Site {
    pub async fn serve(page: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("a bound listener's address")
        );
        let page: std::sync::Arc<str> = page.into();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, page.clone()));
            }
        });
        Self { url, server }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one request's head (a browser asks for the page, or its favicon)
/// and answers the page, closing the connection.
async fn answer(mut stream: tokio::net::TcpStream, page: std::sync::Arc<str>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
