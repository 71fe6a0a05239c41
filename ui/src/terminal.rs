//! The terminal and the event loop: draw, read keys, ask for a refresh
//! every second, take in what the worker reports, until `q`.

use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{self, Event, KeyEventKind};
use ratatui::{backend::Backend, Terminal};

use crate::{
    api::{self, Api},
    app::App,
    conn::Connection,
    view,
    worker::{Request, Worker},
};

/// How often the snapshot is read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for a key before the screen is redrawn (clocks move).
const FRAME: Duration = Duration::from_millis(200);

/// Runs the viewer on this terminal against the admin API at `api_url`
/// until the user quits.
pub fn run(
    api_url: &str,
    token: Option<&str>,
    trusted: &[reqwest::Certificate],
) -> anyhow::Result<()> {
    let base = api::parse_base(api_url)?;
    let api = Api::new(api::http_client(trusted)?, base, api::auth_header(token)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cronmesh-tui")
        .enable_all()
        .build()?;
    let worker = Worker::start(runtime.handle(), Connection::new(api.clone()));
    let mut app = App::new(&api.url(), Utc::now());
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, &worker);
    let restored = ratatui::try_restore();
    runtime.shutdown_background();
    result?;
    Ok(restored?)
}

fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    worker: &Worker,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut refreshing = false;
    let mut next_refresh = Instant::now();
    while !app.quit {
        if !refreshing && Instant::now() >= next_refresh {
            refreshing = worker.send(Request::Refresh);
            if let Some(action) = app.detail_refresh() {
                worker.send(Request::Act(action));
            }
            next_refresh = Instant::now() + REFRESH_EVERY;
        }
        while let Ok(update) = worker.updates.try_recv() {
            if matches!(update, crate::msg::Update::Refreshed { .. }) {
                refreshing = false;
            }
            app.apply(update);
        }
        app.now = Utc::now();
        terminal.draw(|frame| view::draw(frame, app))?;
        if event::poll(FRAME)? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    if let Some(action) = app.on_key(key) {
                        worker.send(Request::Act(action));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
