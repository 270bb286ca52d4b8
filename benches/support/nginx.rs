//! The ceiling: Debian's nginx serving pre-rendered answers as static files, from a
//! configuration generated in a temporary folder, on 127.0.0.1 and a free port, in the
//! foreground as a child process. It logs every request, as the gateway does: buffered, to
//! `/dev/null`, where the benchmark sends the gateway's log too.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio::process::{Child, Command};

use super::wrk::program;

pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    folder: tempfile::TempDir,
}

/// A path served and the bytes it answers with (to GET, and to POST too).
pub struct Served<'a> {
    pub path: &'a str,
    pub body: &'a [u8],
}

impl Nginx {
    /// `None` when nginx is not installed.
    pub async fn start(served: &[Served<'_>]) -> anyhow::Result<Option<Nginx>> {
        let Some(nginx) = program("nginx") else {
            return Ok(None);
        };
        let folder = tempfile::tempdir()?;
        let dir = folder.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut locations = String::new();
        for (i, s) in served.iter().enumerate() {
            let file = format!("/answer-{i}.json");
            std::fs::write(dir.join(&file[1..]), s.body)?;
            // A POST to a static file is 405; turned into the file itself, as for a GET.
            locations += &format!(
                "    location = {} {{ try_files {file} =404; error_page 405 =200 {file}; }}\n\
                 \x20   location = {file} {{ }}\n",
                s.path
            );
        }
        let d = dir.display();
        let config = format!(
            "daemon off;\n\
             worker_processes auto;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             \x20 access_log /dev/null combined buffer=64k flush=1s;\n\
             \x20 default_type application/json;\n\
             \x20 keepalive_requests 100000000;\n\
             \x20 client_body_temp_path {d}/body;\n\
             \x20 proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/uwsgi;\n\
             \x20 scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   root {d};\n\
             {locations}\
             \x20 }}\n\
             }}\n"
        );
        let config_file = dir.join("nginx.conf");
        std::fs::write(&config_file, config)?;
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        // nginx says nothing when it listens: connect until it answers, within a bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                anyhow::bail!("nginx exited ({status}): {log}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "nginx is not listening on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(Nginx {
            child,
            addr,
            folder,
        }))
    }

    pub fn folder(&self) -> PathBuf {
        self.folder.path().to_owned()
    }

    /// Stops the master, which stops its workers, and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.quit();
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }

    /// Asks the master to stop its workers and itself (killing the master would leave the
    /// workers running).
    fn quit(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.quit();
        }
    }
}
