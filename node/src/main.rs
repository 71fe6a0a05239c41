use std::process::ExitCode;

use node::cli::{Command, ConfigCommand};

/// A run's path allocates many small, short-lived buffers (sled's pages,
/// decoded records, requests); mimalloc serves them with about a third of
/// the CPU the system allocator took (docs/PERFORMANCE.md, "Where the time
/// goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    actors::arm_kill_points();
    let cli = match node::settings::parse(std::env::args_os().collect()) {
        Ok((cli, _)) => cli,
        Err(e) => {
            eprintln!("cronmesh: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Dev(args) => {
            node::signals::init_logging(cli.log_format);
            let config = match args.into_config() {
                Ok(config) => config,
                Err(e) => return fail(e),
            };
            if config.tokens.is_empty() {
                tracing::warn!(
                    "dev mode: the admin API is unauthenticated; it listens on {}",
                    config.http
                );
            }
            serve(node::node::run(config, node::signals::shutdown()))
        }
        Command::Server(args) => {
            node::signals::init_logging(cli.log_format);
            match args.into_config() {
                Ok(config) => {
                    if config.secret.is_none() {
                        tracing::warn!(
                            "--unsigned: executor-protocol requests are neither signed nor checked"
                        );
                    }
                    serve(node::node::run(config, node::signals::shutdown()))
                }
                Err(e) => fail(e),
            }
        }
        Command::Executor(args) => {
            node::signals::init_logging(cli.log_format);
            match node::executor::ExecutorConfig::try_from(args) {
                Ok(config) => {
                    if config.secret.is_none() {
                        tracing::warn!("--unsigned: dispatches are accepted without a signature");
                    }
                    serve(node::executor::run(config, node::signals::shutdown()))
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(args) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => match runtime.block_on(node::bench::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            },
            Err(e) => fail(e.into()),
        },
        Command::Config(ConfigCommand::Check { file, role }) => {
            match node::settings::check(&file, &role) {
                Ok(effective) => {
                    print!("{effective}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cronmesh: {}", e.trim_end());
                    ExitCode::from(2)
                }
            }
        }
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", node::settings::reference());
            ExitCode::SUCCESS
        }
        Command::Restore(args) => match node::restore::restore(&args) {
            Ok(restored) => {
                println!("{}", node::restore::summary(&restored, &args.data_dir));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cronmesh: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Tui => match node::client::run_tui(&cli.api) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        Command::Client(command) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(node::client::run(cli.api, command)),
            Err(e) => fail(e.into()),
        },
    }
}

fn serve(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    match actix_rt::System::new().block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("cronmesh: {e:#}");
    ExitCode::FAILURE
}
