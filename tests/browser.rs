//! The ICC web client in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, fantoccini). It submits a brand_campaign brief, waits for plan review, edits
//! a scene caption on its card, approves, and waits until the `<video>` element has loaded
//! the rendered video. A screenshot is saved under the cargo target's tmp directory.
//!
//! Needs `chromium` and `chromium-driver` (Debian; `scripts/setup.sh` installs them).

#[path = "api/helpers.rs"]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_chromedriver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium chromium-driver; see scripts/setup.sh)");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, port)
}

async fn eval(c: &fantoccini::Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

async fn wait_until(c: &fantoccini::Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = eval(c, script).await;
        if !(v.is_null() || v == json!(false)) {
            return v;
        }
        let state = eval(c, "return document.getElementById('job-state').textContent").await;
        let errors =
            eval(c, "return [...document.querySelectorAll('.error')].map(e => e.textContent).join(' | ')").await;
        assert!(Instant::now() < deadline, "timed out waiting for {what}; state {state}, errors {errors}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_edit_approve_and_play_in_chromium() {
    let mut app = helpers::spawn_app().await;
    let (_driver, port) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,1600", format!("--user-data-dir={}", profile.path().display()),
        ]}),
    );
    let c = ClientBuilder::rustls()
        .expect("rustls client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");

    c.goto(&format!("{}/", app.base)).await.unwrap();
    c.find(Locator::Css("#api-key")).await.unwrap().send_keys(&app.editor).await.unwrap();
    c.find(Locator::Css("#save-key")).await.unwrap().click().await.unwrap();
    wait_until(&c, "presets", "return document.querySelectorAll('#preset option').length >= 3").await;
    eval(
        &c,
        "document.getElementById('preset').value = 'brand_campaign';
         document.getElementById('duration').value = '6';
         document.getElementById('tier').value = 'economy';",
    )
    .await;
    c.find(Locator::Css("#brief"))
        .await
        .unwrap()
        .send_keys("A calm teaser for a neighbourhood bakery: fresh bread at dawn, warm light.")
        .await
        .unwrap();
    c.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();

    wait_until(&c, "plan review", "return document.getElementById('job-state').textContent === 'plan_review'").await;
    wait_until(&c, "scene cards", "return document.querySelectorAll('.scene-card input.caption').length > 0").await;
    let caption = c.find(Locator::Css(".scene-card input.caption")).await.unwrap();
    caption.clear().await.unwrap();
    caption.send_keys("Edited in the browser").await.unwrap();
    c.find(Locator::Css("#approve")).await.unwrap().click().await.unwrap();

    let state = wait_until(
        &c,
        "the render",
        "const s = document.getElementById('job-state').textContent;
         return (s === 'delivered' || s === 'awaiting_review') ? s : null",
    )
    .await;
    if state == "awaiting_review" {
        c.find(Locator::Css("#approve")).await.unwrap().click().await.unwrap();
    }
    let loaded = wait_until(
        &c,
        "the video to load",
        "const v = document.getElementById('player');
         return v && v.readyState >= 1 ? {w: v.videoWidth, h: v.videoHeight, d: v.duration} : null",
    )
    .await;
    assert!(loaded["w"].as_f64().unwrap() > 0.0, "{loaded}");
    assert!((loaded["d"].as_f64().unwrap() - 6.0).abs() < 1.5, "{loaded}");
    let shown = eval(&c, "return document.querySelector('#storyboard').textContent").await;
    assert!(shown.as_str().unwrap().contains("Edited in the browser"), "{shown}");

    let png = c.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("icc-browser-test.png");
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    assert_eq!(&png[1..4], b"PNG");
    c.close().await.unwrap();

    // The API agrees: the manifest's latest version is the browser's edit.
    let jobs = app.call("GET", "/v1/jobs", &app.viewer, None).await.body;
    let id = jobs["jobs"][0]["id"].as_str().unwrap().to_owned();
    let versions = app.call("GET", &format!("/v1/jobs/{id}/manifest/versions"), &app.viewer, None).await.body;
    let last = versions.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"], "editor");
    assert_eq!(last["content"]["scenes"][0]["caption"], "Edited in the browser");
    app.stop().await;
}
