//! Lab workload through the scylla Rust driver 0.3.1 with every request in ONE
//! `futures::stream::FuturesUnordered`, the way latte kept its in-flight requests before ScyllaDB's
//! "Async Rust in Practice" fix. Built twice (futures-0.3.18/ and futures-0.3.19/Cargo.toml) so the
//! only difference is the futures crates: 0.3.18's `FuturesUnordered::poll_next` may poll every
//! queued future once per call (yield_every = len), 0.3.19 stops after 32 (rust-lang/futures-rs#2526).
//! Under tokio's cooperative budget the futures that ran out of budget wake themselves at once, so
//! with 0.3.18 each `next()` walks the whole set: client CPU per request grows with the set's size.
//!
//! Workload as lab/clients/rust-scylla: per request index i, 50% prepared INSERT, 30% prepared SELECT,
//! 20% plain QUERY (literal values), one UNLOGGED BATCH of 5 prepared inserts at i == N/2.
//! One tokio task (spawned on the 2-worker multi-thread runtime, so it runs under the cooperative
//! budget like any task) pushes C requests into the set, then pushes one more each time one completes,
//! until N were issued or --max-seconds passed (then it waits for those in flight; "stopped_by" says
//! which), so a sweep can give every run the same time. Prints one JSON line, with the process's own
//! CPU (getrusage RUSAGE_SELF) over the request loop and over the whole run.
//!
//!   futures-client [-n 200000] [-c 4096] [--max-seconds 60] [--host 127.0.0.1:9042]
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use scylla::batch::Batch;
use scylla::frame::request::batch::BatchType;
use scylla::prepared_statement::PreparedStatement;
use scylla::{Session, SessionBuilder};
use std::time::{Duration, Instant};

// Versions read from the Cargo.lock this binary was built from (build.rs), not from the manifest's
// wishes: what is reported is what was linked.
const FUTURES_VERSION: &str = env!("LOCKED_FUTURES_UTIL_VERSION");
const SCYLLA_VERSION: &str = env!("LOCKED_SCYLLA_VERSION");
const TOKIO_VERSION: &str = env!("LOCKED_TOKIO_VERSION");

/// User and system CPU seconds of this process so far.
fn cpu_self() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid rusage to fill; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Request number i of the lab mix, borrowing the session and statements for its lifetime.
fn request<'a>(
    session: &'a Session,
    ins: &'a PreparedStatement,
    sel: &'a PreparedStatement,
    ks: &'a str,
    i: u64,
    batch_at: u64,
) -> BoxFuture<'a, Result<(), String>> {
    let k = (i % 97) as i32;
    let ci = i as i32;
    if i == batch_at {
        Box::pin(async move {
            let mut b = Batch::new(BatchType::Unlogged);
            let mut values = Vec::new();
            for j in 0..5 {
                b.append_statement(ins.clone());
                values.push((k, ci * 10 + j, "batch"));
            }
            session.batch(&b, values).await.map(|_| ()).map_err(|e| e.to_string())
        })
    } else if i % 10 < 5 {
        Box::pin(async move { session.execute(ins, (k, ci, "value")).await.map(|_| ()).map_err(|e| e.to_string()) })
    } else if i % 10 < 8 {
        Box::pin(async move { session.execute(sel, (k, ci)).await.map(|_| ()).map_err(|e| e.to_string()) })
    } else {
        Box::pin(async move {
            let q = format!("SELECT k, c, v FROM {}.kv WHERE k = {} AND c = {}", ks, k, ci);
            session.query(q, &[]).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

struct Outcome {
    issued: u64,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
    cpu: (f64, f64),
    timed_out: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut host = "127.0.0.1:9042".to_string();
    let mut n: u64 = 200_000;
    let mut c: u64 = 4096;
    let mut max_secs: f64 = 60.0;
    let mut ks = "cqlsniff_lab".to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().ok_or(format!("missing value for {}", args[i]));
        match args[i].as_str() {
            "--host" => host = val()?,
            "-n" => n = val()?.parse()?,
            "-c" => c = val()?.parse()?,
            "--max-seconds" => max_secs = val()?.parse()?,
            "--keyspace" => ks = val()?,
            other => return Err(format!("unknown argument {}", other).into()),
        }
        i += 2;
    }
    if c == 0 {
        return Err("-c must be at least 1".into());
    }

    let session = SessionBuilder::new().known_node(&host).build().await?;
    session
        .query(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
                ks
            ),
            &[],
        )
        .await?;
    session
        .query(format!("CREATE TABLE IF NOT EXISTS {}.kv (k int, c int, v text, PRIMARY KEY (k, c))", ks), &[])
        .await?;
    let ins = session.prepare(format!("INSERT INTO {}.kv (k, c, v) VALUES (?, ?, ?)", ks)).await?;
    let sel = session.prepare(format!("SELECT v FROM {}.kv WHERE k = ? AND c = ?", ks)).await?;

    let deadline = Duration::from_secs_f64(max_secs);
    let worker = tokio::spawn(async move {
        let batch_at = n / 2;
        let cpu0 = cpu_self();
        let start = Instant::now();
        let mut set = FuturesUnordered::new();
        let mut issued: u64 = 0;
        while issued < n.min(c) {
            set.push(request(&session, &ins, &sel, &ks, issued, batch_at));
            issued += 1;
        }
        let (mut done, mut errors, mut first_error, mut timed_out) = (0u64, 0u64, None, false);
        while let Some(r) = set.next().await {
            done += 1;
            if let Err(e) = r {
                errors += 1;
                first_error.get_or_insert(e);
            }
            if issued < n && !timed_out {
                // Checking the clock every 1024 completions keeps it off the hot path.
                if done % 1024 == 0 && start.elapsed() > deadline {
                    timed_out = true;
                    continue;
                }
                set.push(request(&session, &ins, &sel, &ks, issued, batch_at));
                issued += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu1 = cpu_self();
        Outcome { issued, done, errors, first_error, secs, cpu: (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1), timed_out }
    });
    let o = worker.await?;
    let total = cpu_self();
    let per_req = if o.done > 0 { (o.cpu.0 + o.cpu.1) * 1e6 / o.done as f64 } else { 0.0 };
    println!(
        "{{\"driver\":\"scylla-rust\",\"driver_version\":\"{}\",\"futures_version\":\"{}\",\"tokio_version\":\"{}\",\
\"protocol\":4,\"mode\":\"futures-unordered\",\"compression\":\"none\",\"connections\":1,\"concurrency\":{},\
\"requests\":{},\"issued\":{},\"errors\":{},\"first_error\":{},\"stopped_by\":\"{}\",\"duration_s\":{:.6},\"ops_per_s\":{:.1},\
\"cpu_user_s\":{:.6},\"cpu_sys_s\":{:.6},\"cpu_us_per_request\":{:.3},\"cpu_total_user_s\":{:.6},\"cpu_total_sys_s\":{:.6},\
\"local_ports\":[]}}",
        SCYLLA_VERSION,
        FUTURES_VERSION,
        TOKIO_VERSION,
        c,
        o.done,
        o.issued,
        o.errors,
        o.first_error.map(|e| format!("{:?}", e)).unwrap_or_else(|| "null".to_string()),
        if o.timed_out { "time" } else { "count" },
        o.secs,
        o.done as f64 / o.secs,
        o.cpu.0,
        o.cpu.1,
        per_req,
        total.0,
        total.1
    );
    if o.errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
