//! Lab workload through the scylla Rust driver (0.3.0 or 0.3.1, see v0.3.*/Cargo.toml).
//!
//! Same workload as lab/clients/gocql: per request index i, 50% prepared INSERT, 30% prepared SELECT,
//! 20% plain QUERY (literal values, not prepared), one UNLOGGED BATCH of 5 prepared inserts at
//! i == N/2. C tokio tasks keep C requests in flight. Prints one JSON line.
//!
//!   scylla-client [-n 5000] [-c 64] [--compression none|lz4|snappy]
use scylla::batch::Batch;
use scylla::frame::request::batch::BatchType;
use scylla::transport::Compression;
use scylla::SessionBuilder;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut host = "127.0.0.1:9042".to_string();
    let mut n: u64 = 5000;
    let mut c: u64 = 64;
    let mut compression = "none".to_string();
    let mut ks = "cqlsniff_lab".to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().ok_or(format!("missing value for {}", args[i]));
        match args[i].as_str() {
            "--host" => host = val()?,
            "-n" => n = val()?.parse()?,
            "-c" => c = val()?.parse()?,
            "--compression" => compression = val()?,
            "--keyspace" => ks = val()?,
            other => return Err(format!("unknown argument {}", other).into()),
        }
        i += 2;
    }
    let comp = match compression.as_str() {
        "none" => None,
        "lz4" => Some(Compression::Lz4),
        "snappy" => Some(Compression::Snappy),
        other => return Err(format!("unknown compression {}", other).into()),
    };

    let session = SessionBuilder::new().known_node(&host).compression(comp).build().await?;
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

    let session = Arc::new(session);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let batch_at = n / 2;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c.min(n) {
        let (session, next, done, errors, first_error) =
            (session.clone(), next.clone(), done.clone(), errors.clone(), first_error.clone());
        let (ins, sel, ks) = (ins.clone(), sel.clone(), ks.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let k = (i % 97) as i32;
                let ci = i as i32;
                let res: Result<(), String> = if i == batch_at {
                    let mut b = Batch::new(BatchType::Unlogged);
                    let mut values = Vec::new();
                    for j in 0..5 {
                        b.append_statement(ins.clone());
                        values.push((k, ci * 10 + j, "batch"));
                    }
                    session.batch(&b, values).await.map(|_| ()).map_err(|e| e.to_string())
                } else if i % 10 < 5 {
                    session.execute(&ins, (k, ci, "value")).await.map(|_| ()).map_err(|e| e.to_string())
                } else if i % 10 < 8 {
                    session.execute(&sel, (k, ci)).await.map(|_| ()).map_err(|e| e.to_string())
                } else {
                    let q = format!("SELECT k, c, v FROM {}.kv WHERE k = {} AND c = {}", ks, k, ci);
                    session.query(q, &[]).await.map(|_| ()).map_err(|e| e.to_string())
                };
                done.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = res {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().unwrap().get_or_insert(e);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    let first = first_error.lock().unwrap().clone();
    println!(
        "{{\"driver\":\"scylla-rust\",\"driver_version\":\"{}\",\"protocol\":4,\"mode\":\"{}\",\"compression\":\"{}\",\
\"connections\":1,\"requests\":{},\"errors\":{},\"first_error\":{},\"concurrency\":{},\"duration_s\":{:.6},\
\"ops_per_s\":{:.1},\"local_ports\":[]}}",
        env!("CARGO_PKG_VERSION"),
        if env!("CARGO_PKG_VERSION") == "0.3.0" { "unbuffered" } else { "bufwriter" },
        compression,
        done,
        errors,
        first.map(|e| format!("{:?}", e)).unwrap_or_else(|| "null".to_string()),
        c,
        secs,
        done as f64 / secs
    );
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
