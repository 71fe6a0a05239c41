//! Settings come from flags over `CRONMESH_*` variables over the
//! `--config` file over defaults, as a real `cronmesh server` shows by the
//! address it listens on; `cronmesh config check` prints the effective
//! settings with their sources and refuses a bad file naming the setting.

use cronmesh_tests::{
    cluster::free_port,
    process::{self, Proc},
};

const SERVING: &str = "cronmesh node serving on ";

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let [from_file, from_env, from_flag] = [free_port(), free_port(), free_port()];
    let file = dir.path().join("cronmesh.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nhttp = \"127.0.0.1:{from_file}\"\nunsigned = true\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = file.to_string_lossy().to_string();
    let env_http = format!("127.0.0.1:{from_env}");
    let flag_http = format!("127.0.0.1:{from_flag}");

    let node = Proc::spawn(&["server", "--config", &config], SERVING);
    assert_eq!(node.url, format!("http://127.0.0.1:{from_file}"));
    drop(node);

    let node = Proc::spawn_with_env(
        &["server", "--config", &config],
        &[("CRONMESH_HTTP", &env_http)],
        SERVING,
    );
    assert_eq!(node.url, format!("http://{env_http}"));
    drop(node);

    let node = Proc::spawn_with_env(
        &["server", "--config", &config, "--http", &flag_http],
        &[("CRONMESH_HTTP", &env_http)],
        SERVING,
    );
    assert_eq!(node.url, format!("http://{flag_http}"));
}

fn check(file_text: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cronmesh.toml");
    std::fs::write(&file, file_text).unwrap();
    let out = std::process::Command::new(process::binary())
        .args(["config", "check"])
        .arg(&file)
        .env_remove("CRONMESH_HISTORY_LIMIT")
        .envs(env.iter().copied())
        .output()
        .expect("run cronmesh config check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_prints_each_setting_with_its_source() {
    let (code, stdout, stderr) = check(
        "data_dir = \"/var/lib/cronmesh\"\nhistory_limit = 5\nunsigned = true\ngossip = \"127.0.0.1:7072\"\n\
         seeds = [\"10.0.0.1:7072\"]\n",
        &[("CRONMESH_RAFT_TICK_MS", "20")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("data_dir = \"/var/lib/cronmesh\"  # file"),
        "{stdout}"
    );
    assert!(stdout.contains("history_limit = 5  # file"), "{stdout}");
    assert!(
        stdout.contains("seeds = [\"10.0.0.1:7072\"]  # file"),
        "{stdout}"
    );
    assert!(
        stdout.contains("raft_tick_ms = 20  # environment"),
        "{stdout}"
    );
    assert!(
        stdout.contains("raft_compact_after = 10000  # default"),
        "{stdout}"
    );
}

#[test]
fn config_check_refuses_a_bad_file_and_names_the_setting() {
    let (code, _, stderr) = check("data_dir = \"/d\"\nhistroy_limit = 5\n", &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("unknown setting `histroy_limit`"),
        "{stderr}"
    );

    let (code, _, stderr) = check("data_dir = \"/d\"\nhttp = \"not an address\"\n", &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("`http`"), "{stderr}");

    let (code, _, stderr) = check("data_dir = \"/d\"\npeers = [\"1=127.0.0.1:7071\"]\n", &[]);
    assert_eq!(
        code,
        Some(2),
        "peers without raft is refused as the server would"
    );
    assert!(stderr.contains("--raft"), "{stderr}");
}

#[test]
fn a_server_or_executor_without_a_secret_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().to_string();
    for args in [
        vec![
            "server",
            "--data-dir",
            data.as_str(),
            "--http",
            "127.0.0.1:0",
        ],
        vec!["executor", "--listen", "127.0.0.1:0"],
    ] {
        let out = std::process::Command::new(process::binary())
            .args(&args)
            .env_remove("CRONMESH_SECRET_FILE")
            .output()
            .expect("run cronmesh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started without a secret");
        assert!(stderr.contains("--secret-file"), "{args:?}: {stderr}");
    }
}
