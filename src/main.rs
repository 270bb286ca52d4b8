use clap::Parser;

use callrec_gateway::config::{Cli, Command};

/// jemalloc instead of glibc's malloc. A request is often begun on one runtime thread and
/// finished on another (it waited, or was stolen), so much of what one thread allocates
/// another frees; glibc serves that through a few locked heaps and spends much of a request
/// there, jemalloc through per-thread caches. Measured on the REST list, writes, and the list
/// on PostgreSQL with every request waiting for a look at the log head (see BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
mod allocator {
    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// jemalloc's settings, read when it starts. A background thread gives freed memory back
    /// to the system within about a second, whether or not the server is busy: a burst of
    /// password checks (19 MiB each) leaves nothing behind once it is over.
    #[unsafe(export_name = "_rjem_malloc_conf")]
    static MALLOC_CONF: MallocConf = MallocConf(
        c"background_thread:true,max_background_threads:1,dirty_decay_ms:1000,muzzy_decay_ms:0"
            .as_ptr(),
    );

    /// A C string pointer as jemalloc reads `malloc_conf`.
    #[repr(transparent)]
    struct MallocConf(*const std::ffi::c_char);

    // SAFETY: it points to a static string that nothing writes.
    unsafe impl Sync for MallocConf {}
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
