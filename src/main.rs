use clap::Parser;

use callrec_gateway::config::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    callrec_gateway::auth::return_freed_memory_to_the_system();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => callrec_gateway::server::run(args).await,
        Command::User(args) => callrec_gateway::cli::user(args).await,
        Command::Export(args) => callrec_gateway::cli::export(args).await,
        Command::Import(args) => callrec_gateway::cli::import(args).await,
        Command::Schema => {
            print!("{}", callrec_gateway::http::graphql::sdl());
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written (a full disk).
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            if e.is::<callrec_gateway::server::StoreFailed>() {
                std::process::ExitCode::from(callrec_gateway::server::StoreFailed::EXIT_CODE)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
