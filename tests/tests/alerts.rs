//! A failed run is announced to the job's alert webhooks.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{web, App, HttpResponse, HttpServer};
use cronmesh_tests::{
    api::Api,
    process::{executor, server},
    wait,
};
use serde_json::{json, Value};

#[actix_web::test]
async fn a_failed_run_reaches_the_alert_webhook() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let sink = received.clone();
    let receiver = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(body.into_inner());
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(receiver);

    let dir = tempfile::tempdir().unwrap();
    let exec = executor("default");
    let node = server(dir.path(), "127.0.0.1:0", &[&exec.url]);
    let api = Api::new(node.url.clone());
    api.create_job(json!({
        "id": "broken", "schedule": "@manual",
        "alerts": {"webhooks": [hook]},
        "target": {"type": "shell", "command": "echo oops >&2; exit 7"}
    }))
    .await;
    api.post("/v1/jobs/broken/trigger", json!({})).await;
    let alert = wait::until("the alert", Duration::from_secs(15), || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(alert["event"], "run.failed");
    assert_eq!(alert["run"]["job_id"], "broken");
    assert_eq!(alert["run"]["exit_code"], 7);
}
