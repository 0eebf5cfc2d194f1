//! The ICC web client in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, fantoccini), as a user would use it.
//!
//! - At 1400×1000: enter the key and submit a brand_campaign brief with the keyboard, land on
//!   the job's own URL, review the plan with the keyboard only (edit a caption, write a note,
//!   Tab to Approve, Enter), watch the video with its poster, subtitle track and "Download
//!   MP4" button, read the verdicts and the cost panel, reload the job URL, use the back button.
//! - At 390×844: the same delivered job fits the screen, the list and a tapped job show, then a
//!   second brief is submitted, sent back to planning with a note (the note appears in the
//!   plan's comments and the box clears) and rejected (the job shows "rejected").
//!
//! On every main view the page must not be wider than the window, no `src`/`href` may carry
//! the API key, and axe-core (injected from the assets directory) must report no serious or
//! critical violation. Screenshots go to `$AIPROD_SHOTS_DIR`, else the cargo target's tmp
//! directory (`icc-shots/`).
//!
//! Needs `chromium` and `chromium-driver` (Debian; `scripts/setup.sh`) and axe-core
//! (`scripts/install_assets.sh`, which `make test` runs).

#[path = "api/helpers.rs"]
mod helpers;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
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

async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

async fn wait_until(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = eval(c, script).await;
        if !(v.is_null() || v == json!(false)) {
            return v;
        }
        let state = eval(c, "return (document.getElementById('job-state') || {}).textContent || null").await;
        let errors =
            eval(c, "return [...document.querySelectorAll('.error')].map(e => e.textContent).join(' | ')").await;
        assert!(Instant::now() < deadline, "timed out waiting for {what}; state {state}, errors {errors}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_state(c: &Client, states: &[&str]) -> String {
    let list = serde_json::to_string(states).unwrap();
    let v = wait_until(
        c,
        &format!("state in {list}"),
        &format!(
            "const s = document.getElementById('job-state').textContent;
             return !document.getElementById('detail').hidden && {list}.includes(s) ? s : null"
        ),
    )
    .await;
    v.as_str().unwrap().to_owned()
}

/// Press keys on whatever has the focus, as a keyboard would.
async fn press(c: &Client, keys: &[Key]) {
    let mut seq = KeyActions::new("keyboard".into());
    for k in keys {
        let ch: char = (*k).into();
        seq = seq.then(KeyAction::Down { value: ch }).then(KeyAction::Up { value: ch });
    }
    c.perform_actions(seq).await.unwrap();
}

async fn focused_id(c: &Client) -> String {
    eval(c, "return document.activeElement ? document.activeElement.id : ''").await.as_str().unwrap_or("").to_owned()
}

/// Tab forward until the element with `id` has the focus (at most 12 presses).
async fn tab_to(c: &Client, id: &str) {
    for _ in 0..12 {
        if focused_id(c).await == id {
            return;
        }
        press(c, &[Key::Tab]).await;
    }
    panic!("Tab never reached #{id}; the focus is on #{}", focused_id(c).await);
}

fn shots_dir() -> PathBuf {
    let dir = std::env::var_os("AIPROD_SHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("icc-shots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
}

/// The page is no wider than the window.
async fn assert_fits(c: &Client, view: &str) {
    let m = eval(c, "return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth}").await;
    assert!(m["scroll"].as_i64().unwrap() <= m["inner"].as_i64().unwrap(), "{view}: the page overflows sideways: {m}");
}

/// No `src` or `href` on the page (nor the player's current source) carries the key.
async fn assert_no_key_in_urls(c: &Client, key: &str, view: &str) {
    let urls = eval(
        c,
        "const v = document.getElementById('player');
         return [...document.querySelectorAll('[src],[href],[poster]')]
           .flatMap(e => ['src', 'href', 'poster'].map(a => e.getAttribute(a)).filter(Boolean))
           .concat(v ? [v.currentSrc] : [])",
    )
    .await;
    let urls: Vec<&str> = urls.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!urls.is_empty(), "{view}: no URLs at all?");
    for u in &urls {
        assert!(!u.contains(key) && !u.contains("access_token"), "{view}: a URL carries the key: {u}");
    }
}

fn axe_source() -> String {
    let dir = std::env::var_os("AIPROD_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets"));
    let path = dir.join("axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/install_assets.sh", path.display()))
}

/// axe-core's WCAG 2.1 A/AA and best-practice rules on the page as it is: no serious or
/// critical violation.
async fn assert_accessible(c: &Client, axe: &str, view: &str) {
    if eval(c, "return typeof window.axe === 'object'").await != json!(true) {
        c.execute(axe, vec![]).await.unwrap();
    }
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))
               .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            vec![],
        )
        .await
        .unwrap();
    let all = found.as_array().unwrap();
    let bad: Vec<&Value> =
        all.iter().filter(|v| matches!(v["impact"].as_str(), Some("serious") | Some("critical"))).collect();
    if !all.is_empty() {
        println!("axe on {view}: {}", serde_json::to_string(all).unwrap());
    }
    assert!(bad.is_empty(), "axe on {view}: {}", serde_json::to_string_pretty(&bad).unwrap());
}

async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--window-size=1400,1000", format!("--user-data-dir={}", profile.display()),
        ]}),
    );
    ClientBuilder::rustls()
        .expect("rustls client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

/// Make the viewport `w`×`h` (the window's frame, if any, is added).
async fn viewport(c: &Client, w: u32, h: u32) {
    c.set_window_size(w, h).await.unwrap();
    let inner = eval(c, "return [window.innerWidth, window.innerHeight]").await;
    let (iw, ih) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
    if (iw, ih) != (w, h) {
        c.set_window_size(w + (w - iw.min(w)), h + (h - ih.min(h))).await.unwrap();
    }
    let inner = eval(c, "return window.innerWidth").await;
    assert_eq!(inner, json!(w), "the viewport is {w} px wide");
}

async fn submit_brief(c: &Client, text: &str) {
    wait_until(c, "presets", "return document.querySelectorAll('#preset option').length >= 3").await;
    eval(
        c,
        "document.getElementById('preset').value = 'brand_campaign';
         document.getElementById('duration').value = '6';
         document.getElementById('tier').value = 'economy';",
    )
    .await;
    let brief = c.find(Locator::Css("#brief")).await.unwrap();
    brief.clear().await.unwrap();
    brief.send_keys(text).await.unwrap();
    tab_to(c, "submit").await;
    press(c, &[Key::Enter]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium, chromedriver and axe-core (scripts/setup.sh, scripts/install_assets.sh)"]
async fn the_icc_from_key_to_video_on_desktop_and_phone() {
    let axe = axe_source();
    let mut app = helpers::spawn_app().await;
    let (_driver, port) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(port, profile.path()).await;
    viewport(&c, 1400, 1000).await;

    // ---- desktop: key, brief, plan review by keyboard ----------------------------------------
    c.goto(&format!("{}/", app.base)).await.unwrap();
    assert_accessible(&c, &axe, "the empty page").await;
    c.find(Locator::Css("#api-key")).await.unwrap().send_keys(&app.editor).await.unwrap();
    press(&c, &[Key::Enter]).await;
    submit_brief(&c, "A calm teaser for a neighbourhood bakery: fresh bread at dawn, warm light.").await;
    let kept = eval(&c, "return document.getElementById('api-key').value.length").await;
    assert_eq!(kept, json!(app.editor.len()), "the key field keeps the key in use");

    wait_state(&c, &["plan_review"]).await;
    let url = c.current_url().await.unwrap();
    let id = url.path().strip_prefix("/jobs/").expect("the job has its own URL").to_owned();
    assert_eq!(id.len(), 36, "{url}");
    wait_until(&c, "scene cards", "return document.querySelectorAll('.scene-card input.caption').length > 0").await;
    let counter = eval(&c, "return document.querySelector('.scene-card .count').textContent").await;
    assert!(counter.as_str().unwrap().ends_with("/ 120 characters"), "{counter}");
    assert_fits(&c, "plan review at 1400").await;
    assert_accessible(&c, &axe, "plan review at 1400").await;
    shot(&c, "desktop-1-plan-review").await;

    // Keyboard only: the caption, the note, Tab to Approve, Enter.
    let caption = c.find(Locator::Css(".scene-card input.caption")).await.unwrap();
    caption.clear().await.unwrap();
    caption.send_keys("Edited in the browser").await.unwrap();
    let count = eval(&c, "return document.querySelector('.scene-card .count').textContent").await;
    assert_eq!(count, "21 / 120 characters", "the counter follows the typing");
    c.find(Locator::Css("#review-note")).await.unwrap().send_keys("Warm light, please.").await.unwrap();
    tab_to(&c, "approve").await;
    press(&c, &[Key::Enter]).await;

    let state = wait_state(
        &c,
        &[
            "voicing",
            "rendering",
            "technical_qa",
            "semantic_qa",
            "supervising",
            "awaiting_review",
            "delivering",
            "delivered",
        ],
    )
    .await;
    assert_ne!(state, "plan_review");
    assert_eq!(eval(&c, "return document.getElementById('review-note').value").await, "", "the note box clears");
    let announced = eval(&c, "return document.getElementById('announcer').textContent").await;
    assert!(
        announced.as_str().unwrap().starts_with(&format!("Job {}", &id[..8])) || announced == "Approved.",
        "{announced}"
    );

    let state = wait_state(&c, &["delivered", "awaiting_review"]).await;
    if state == "awaiting_review" {
        c.find(Locator::Css("#review-note")).await.unwrap().send_keys("Fine by me.").await.unwrap();
        tab_to(&c, "approve").await;
        press(&c, &[Key::Enter]).await;
        wait_state(&c, &["delivered"]).await;
    }

    // ---- desktop: the result first ----------------------------------------------------------
    let loaded = wait_until(
        &c,
        "the video to load",
        "const v = document.getElementById('player');
         return v && v.dataset.kind === 'video' && v.readyState >= 1
           ? {w: v.videoWidth, h: v.videoHeight, d: v.duration, poster: v.getAttribute('poster'),
              tracks: [...v.querySelectorAll('track')].map(t => t.srclang)} : null",
    )
    .await;
    assert!(loaded["w"].as_f64().unwrap() > 0.0, "{loaded}");
    assert!((loaded["d"].as_f64().unwrap() - 6.0).abs() < 1.5, "{loaded}");
    assert!(loaded["poster"].as_str().unwrap().contains("/artifacts/keyframes/"), "{loaded}");
    assert_eq!(loaded["tracks"], json!(["en"]), "{loaded}");
    let first = eval(
        &c,
        "const r = document.getElementById('result'), p = document.getElementById('job-state');
         return !!(r.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING)",
    )
    .await;
    assert_eq!(first, true, "the player comes before the status");
    // The download link works without a key.
    let download = wait_until(
        &c,
        "the download button",
        "const a = document.getElementById('download-mp4');
         return a ? fetch(a.href, {headers: {Range: 'bytes=0-15'}}).then(r => ({status: r.status, text: a.textContent})) : null",
    )
    .await;
    assert_eq!(download, json!({"status": 206, "text": "Download MP4"}));
    let shown = eval(&c, "return document.querySelector('#storyboard').textContent").await;
    assert!(shown.as_str().unwrap().contains("Edited in the browser"), "{shown}");

    // Readable verdicts and cost: badges with values against thresholds, a decision in words.
    let qa = wait_until(
        &c,
        "the quality report",
        "const q = document.getElementById('qa');
         return q.querySelector('.verdict') ? {badges: q.querySelectorAll('.badge.pass, .badge.warn, .badge.fail').length,
           text: q.textContent, decision: (document.getElementById('decision') || {}).textContent} : null",
    )
    .await;
    assert!(qa["badges"].as_u64().unwrap() >= 3, "{qa}");
    let text = qa["text"].as_str().unwrap();
    assert!(text.contains("vs threshold") && text.contains("measured"), "{text}");
    assert!(!text.contains("{\"kind\""), "the decision is in words: {text}");
    assert!(qa["decision"].as_str().unwrap().starts_with("Decision: "), "{qa}");
    let notes = eval(&c, "return document.getElementById('warnings').textContent").await;
    assert!(notes.as_str().unwrap().contains("Voice: "), "the voice that spoke is named: {notes}");
    let cost = eval(&c, "return document.getElementById('cost').textContent").await;
    let cost = cost.as_str().unwrap();
    assert!(cost.contains("actual CPU-s") && cost.contains("Calibration:") && cost.contains("% "), "{cost}");
    // The plan's thread shows the reviewer's note with its author.
    let thread = eval(&c, "return document.getElementById('comments').textContent").await;
    assert!(
        thread.as_str().unwrap().contains("Warm light, please.") && thread.as_str().unwrap().contains("editor"),
        "{thread}"
    );

    let hidden = eval(
        &c,
        "return ['cancel', 'review-actions', 'save-edits'].every(id => document.getElementById(id).offsetParent === null)",
    )
    .await;
    assert_eq!(hidden, true, "a delivered job offers no cancel or review buttons");
    c.find(Locator::Css("#refresh")).await.unwrap().click().await.unwrap();
    wait_until(
        &c,
        "the job's thumbnail in the list",
        "const i = document.querySelector('#jobs img.thumb'); return i && i.complete && i.naturalWidth > 0",
    )
    .await;
    assert_fits(&c, "delivered at 1400").await;
    assert_no_key_in_urls(&c, &app.editor, "delivered at 1400").await;
    assert_accessible(&c, &axe, "delivered at 1400").await;
    shot(&c, "desktop-2-delivered").await;
    eval(&c, "document.getElementById('qa').scrollIntoView()").await;
    shot(&c, "desktop-3-quality-and-cost").await;
    eval(&c, "window.scrollTo(0, 0)").await;

    // ---- the job URL survives a reload; the back button returns to it -----------------------
    c.refresh().await.unwrap();
    assert_eq!(wait_state(&c, &["delivered"]).await, "delivered");
    wait_until(&c, "the player after reload", "return !!document.getElementById('player')").await;
    c.find(Locator::Css("#home")).await.unwrap().click().await.unwrap();
    wait_until(&c, "the list view", "return document.getElementById('detail').hidden && location.pathname === '/'")
        .await;
    c.back().await.unwrap();
    wait_until(
        &c,
        "the job after going back",
        &format!("return !document.getElementById('detail').hidden && location.pathname === '/jobs/{id}'"),
    )
    .await;

    // ---- phone ------------------------------------------------------------------------------
    viewport(&c, 390, 844).await;
    wait_state(&c, &["delivered"]).await;
    assert_fits(&c, "delivered at 390").await;
    let visible = eval(
        &c,
        "const r = document.getElementById('detail').getBoundingClientRect();
         return r.left >= 0 && r.right <= window.innerWidth && r.width > 300",
    )
    .await;
    assert_eq!(visible, true, "the job fills the phone's width");
    assert_no_key_in_urls(&c, &app.editor, "delivered at 390").await;
    assert_accessible(&c, &axe, "delivered at 390").await;
    shot(&c, "phone-1-delivered").await;
    let down = eval(&c, "window.scrollTo(0, 700); return window.scrollY").await;
    assert!(down.as_f64().unwrap() > 0.0);
    shot(&c, "phone-2-delivered-scrolled").await;
    eval(&c, "window.scrollTo(0, 0)").await;

    c.find(Locator::Css("#back")).await.unwrap().click().await.unwrap();
    wait_until(
        &c,
        "the list on the phone",
        "return document.querySelectorAll('#jobs a').length >= 1 && document.getElementById('detail').hidden",
    )
    .await;
    assert_fits(&c, "list at 390").await;
    assert_accessible(&c, &axe, "list at 390").await;
    shot(&c, "phone-3-list").await;

    // A second brief from the phone: re-plan with a note, then reject.
    submit_brief(&c, "A short welcome for new library members: quiet reading rooms, friendly staff.").await;
    wait_state(&c, &["plan_review"]).await;
    let second = c.current_url().await.unwrap().path().strip_prefix("/jobs/").unwrap().to_owned();
    assert_ne!(second, id);
    wait_until(&c, "scene cards", "return document.querySelectorAll('.scene-card input.caption').length > 0").await;
    assert_fits(&c, "plan review at 390").await;
    assert_accessible(&c, &axe, "plan review at 390").await;
    eval(&c, "document.getElementById('storyboard').scrollIntoView()").await;
    shot(&c, "phone-4-plan-review").await;
    c.find(Locator::Css("#review-note")).await.unwrap().send_keys("Mention the opening hours.").await.unwrap();
    tab_to(&c, "request-changes").await;
    press(&c, &[Key::Enter]).await;
    wait_until(
        &c,
        "the note in the thread",
        "return document.getElementById('comments').textContent.includes('Mention the opening hours.')",
    )
    .await;
    assert_eq!(eval(&c, "return document.getElementById('review-note').value").await, "", "the note box clears");
    wait_state(&c, &["plan_review"]).await;
    c.find(Locator::Css("#review-note")).await.unwrap().send_keys("Not this one.").await.unwrap();
    tab_to(&c, "reject").await;
    press(&c, &[Key::Enter]).await;
    assert_eq!(wait_state(&c, &["rejected"]).await, "rejected");
    let error = eval(&c, "return document.getElementById('job-error').textContent").await;
    assert!(error.as_str().unwrap().contains("Not this one."), "{error}");
    assert_fits(&c, "rejected at 390").await;
    eval(&c, "window.scrollTo(0, 0)").await;
    shot(&c, "phone-5-rejected").await;

    // ---- /docs: grouped, submit first, examples, try it with the key -------------------------
    viewport(&c, 1400, 1000).await;
    c.goto(&format!("{}/docs", app.base)).await.unwrap();
    let docs = wait_until(
        &c,
        "the API docs",
        "const ops = [...document.querySelectorAll('.op h3')];
         return ops.length >= 15 ? {first: ops[0].textContent, n: ops.length,
           curl: document.querySelectorAll('.op pre').length, text: document.getElementById('ops').innerText} : null",
    )
    .await;
    assert!(docs["first"].as_str().unwrap().starts_with("post/v1/pipeline/run"), "{}", docs["first"]);
    assert!(docs["curl"].as_u64().unwrap() >= docs["n"].as_u64().unwrap(), "a curl example per operation");
    assert!(!docs["text"].as_str().unwrap().contains('`'), "backticks are rendered as code");
    let presets = c.find(Locator::Css("#get-v1-presets details")).await.unwrap();
    presets.find(Locator::Css("summary")).await.unwrap().click().await.unwrap();
    presets.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
    let answer = wait_until(
        &c,
        "try it",
        "const p = document.querySelector('#get-v1-presets details pre'); return p && !p.textContent.endsWith('…') ? p.textContent : null",
    )
    .await;
    assert!(
        answer.as_str().unwrap().starts_with("200") && answer.as_str().unwrap().contains("brand_campaign"),
        "{answer}"
    );
    assert_accessible(&c, &axe, "/docs").await;
    shot(&c, "desktop-4-docs").await;
    c.close().await.unwrap();

    // The API agrees: the first manifest's latest version is the browser's edit.
    let versions = app.call("GET", &format!("/v1/jobs/{id}/manifest/versions"), &app.viewer, None).await.body;
    let last = versions.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"], "editor");
    assert_eq!(last["content"]["scenes"][0]["caption"], "Edited in the browser");
    let rejected = app.call("GET", &format!("/v1/jobs/{second}"), &app.viewer, None).await.body;
    assert_eq!((rejected["state"].as_str(), rejected["failed_stage"].as_str()), (Some("failed"), Some("plan_review")));
    app.stop().await;
}
