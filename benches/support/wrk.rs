//! Load from outside the server's process: Debian's `wrk`, driven by a Lua script that says
//! what each request is and prints what was measured on one machine-readable line.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, ensure};
use tokio::process::Command;

use super::load::Load;

/// Threads of wrk: one per core of the machine the figures are quoted for.
const THREADS: usize = 2;

/// What every request of a run is.
pub enum Ask {
    /// `GET path` with the bearer token.
    Get { path: String, token: String },
    /// `POST /graphql` of the same query every time.
    Graphql { token: String, query: String },
    /// `POST /graphql` of the query after a comment holding a counter: every query text is
    /// new, so nothing can be answered from kept answers.
    GraphqlCounted { token: String, query: String },
    /// `PUT` of a platform among `platforms` named `P000`… under `list`, each request setting
    /// a description no request set before: every request is a real change to commit.
    Put {
        token: String,
        list: String,
        platforms: usize,
    },
}

/// A program of the system, looked for where Debian installs it.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

pub struct Wrk {
    program: PathBuf,
    /// Where the scripts are written.
    scratch: PathBuf,
    scripts: usize,
}

impl Wrk {
    /// `None` when wrk is not installed.
    pub fn find(scratch: &Path) -> Option<Wrk> {
        Some(Wrk {
            program: program("wrk")?,
            scratch: scratch.to_owned(),
            scripts: 0,
        })
    }

    /// Runs `ask` against `addr` over `connections` connections: `warm_up` uncounted, then
    /// `duration` measured.
    pub async fn run(
        &mut self,
        addr: SocketAddr,
        connections: usize,
        warm_up: Duration,
        duration: Duration,
        ask: &Ask,
    ) -> anyhow::Result<Load> {
        self.scripts += 1;
        let script = self.scratch.join(format!("ask-{}.lua", self.scripts));
        std::fs::write(&script, lua(ask))?;
        let url = match ask {
            Ask::Get { path, .. } => format!("http://{addr}{path}"),
            Ask::Graphql { .. } | Ask::GraphqlCounted { .. } => format!("http://{addr}/graphql"),
            Ask::Put { list, .. } => format!("http://{addr}{list}"),
        };
        if warm_up >= Duration::from_secs(1) {
            self.once(&url, &script, connections, warm_up).await?;
        }
        self.once(&url, &script, connections, duration).await
    }

    async fn once(
        &self,
        url: &str,
        script: &Path,
        connections: usize,
        duration: Duration,
    ) -> anyhow::Result<Load> {
        let threads = THREADS.min(connections);
        let output = Command::new(&self.program)
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .arg("--timeout")
            .arg("10s")
            .arg("-s")
            .arg(script)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running wrk")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("MEASURED "))
            .with_context(|| format!("wrk printed no figures: {stdout}"))?;
        let numbers: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("wrk's figures: {line}"))?;
        let [requests, micros, failures, p50, p99] = numbers[..] else {
            anyhow::bail!("wrk's figures: {line}");
        };
        Ok(Load {
            requests,
            failures,
            elapsed: Duration::from_micros(micros.max(1)),
            p50_ms: p50 as f64 / 1000.0,
            p99_ms: p99 as f64 / 1000.0,
        })
    }
}

/// Numbers wrk's threads (each runs a Lua state of its own, which sees its number as `number`)
/// and counts each thread's requests in `counter`, for requests that must differ from all
/// others. Their bodies are of one length (the counter has a fixed width), so each request is
/// a head made once by `head_of` (with `wrk.format`, in `init`) and the body: building the
/// whole request with `wrk.format` every time cost wrk, on the cores it shares with the
/// server, 3–8 µs of the 20–35 µs it spends per PUT.
const NUMBERED: &str = "local threads = 0\n\
                        function setup(thread)\n\
                          thread:set(\"number\", threads)\n\
                          threads = threads + 1\n\
                        end\n\
                        local counter = 0\n\
                        function head_of(path, sample)\n\
                          local whole = wrk.format(nil, path, nil, sample)\n\
                          return string.sub(whole, 1, #whole - #sample)\n\
                        end\n";

/// Sets runs apart that are made at once (two gateways loaded together), so that their
/// changes differ: a PUT of the value already stored changes nothing.
pub fn run_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A Lua string literal of `text`.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn lua(ask: &Ask) -> String {
    let mut script = String::new();
    let token = match ask {
        Ask::Get { token, .. }
        | Ask::Graphql { token, .. }
        | Ask::GraphqlCounted { token, .. }
        | Ask::Put { token, .. } => token,
    };
    script += &format!(
        "wrk.headers[\"Authorization\"] = {}\n",
        quoted(&format!("Bearer {token}"))
    );
    match ask {
        Ask::Get { .. } => {}
        Ask::Graphql { query, .. } => {
            let body = serde_json::json!({ "query": query }).to_string();
            script += "wrk.method = \"POST\"\n";
            script += "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
            script += &format!("wrk.body = {}\n", quoted(&body));
        }
        Ask::GraphqlCounted { query, .. } => {
            // The body is `{"query": "# <thread>.<counter>\n<query>"}`; each thread has its
            // own Lua state, hence the thread's number in the comment.
            let rest = serde_json::to_string(&format!("\n{query}")).expect("a string");
            let rest = &rest[1..];
            script += "wrk.method = \"POST\"\n";
            script += "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
            script += &format!("local rest = {}\n", quoted(&format!("{rest}}}")));
            script += NUMBERED;
            script += "local function body(n)\n\
                         return string.format('{\"query\": \"# %d.%012d', number, n) .. rest\n\
                       end\n\
                       local head\n\
                       function init(args)\n\
                         head = head_of(nil, body(0))\n\
                       end\n\
                       function request()\n\
                         counter = counter + 1\n\
                         return head .. body(counter)\n\
                       end\n";
        }
        Ask::Put {
            list, platforms, ..
        } => {
            script += "wrk.method = \"PUT\"\n";
            script += "wrk.headers[\"Content-Type\"] = \"application/json\"\n";
            script += &format!("local list = {}\n", quoted(list));
            script += &format!("local platforms = {platforms}\n");
            script += &format!("local run = \"{}\"\n", run_tag());
            script += NUMBERED;
            script += "local function body(n)\n\
                         return string.format('{\"description\": \"revision %s.%d.%012d\"}',\n\
                           run, number, n)\n\
                       end\n\
                       local heads = {}\n\
                       function init(args)\n\
                         for i = 0, platforms - 1 do\n\
                           local path = string.format(\"%sP%03d/\", list, i)\n\
                           heads[i] = head_of(path, body(0))\n\
                         end\n\
                       end\n\
                       function request()\n\
                         counter = counter + 1\n\
                         return heads[counter % platforms] .. body(counter)\n\
                       end\n";
        }
    }
    script += "function done(summary, latency, requests)\n\
                 local e = summary.errors\n\
                 io.write(string.format(\"MEASURED %d %d %d %d %d\\n\", summary.requests,\n\
                   summary.duration, e.connect + e.read + e.write + e.timeout + e.status,\n\
                   latency:percentile(50), latency:percentile(99)))\n\
               end\n";
    script
}
