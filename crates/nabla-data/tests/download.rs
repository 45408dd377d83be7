//! Downloads end to end against a local HTTP server on 127.0.0.1 serving
//! the shipped MNIST files: plain, resumed, corrupted, truncated, and with a
//! dead first mirror.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nabla_data::download::{download_files, md5_of_file, RemoteFile};
use nabla_data::Mnist;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Good,
    Corrupt,
    Truncate,
}

struct Server {
    base: String,
    ranges_seen: Arc<Mutex<Vec<String>>>,
}

/// Serves `files` under /NAME; honours `Range: bytes=N-` with 206.
fn serve(files: HashMap<String, Vec<u8>>, mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let ranges_seen = Arc::new(Mutex::new(vec![]));
    let seen = ranges_seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = handle(stream, &files, mode, &seen);
        }
    });
    Server { base, ranges_seen }
}

fn handle(
    mut s: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    mode: Mode,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut start = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(r) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            seen.lock().unwrap().push(r.trim().to_string());
            start = r.trim().trim_end_matches('-').parse().unwrap_or(0);
        }
    }
    let Some(body) = files.get(&path) else {
        return s.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let mut body = body[start.min(body.len())..].to_vec();
    if mode == Mode::Corrupt {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let status = if start > 0 {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    let send = if mode == Mode::Truncate {
        &body[..body.len() / 2]
    } else {
        &body[..]
    };
    s.write_all(send)?;
    s.flush()
}

fn shipped() -> (HashMap<String, Vec<u8>>, Vec<RemoteFile>) {
    let names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];
    let mut files = HashMap::new();
    let mut remote = vec![];
    for n in names {
        let p = Mnist::shipped_dir().join(n);
        files.insert(n.to_string(), std::fs::read(&p).unwrap());
        let md5: &'static str = Box::leak(md5_of_file(&p).unwrap().into_boxed_str());
        remote.push(RemoteFile { name: n, md5 });
    }
    (files, remote)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-dl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn leftovers(dir: &PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn downloads_verifies_and_loads() {
    let (files, remote) = shipped();
    let server = serve(files, Mode::Good);
    let dir = tmp("good");
    // the first mirror refuses connections: the second one is used
    let mirrors = vec!["http://127.0.0.1:9/".to_string(), server.base.clone()];
    download_files(&dir, &mirrors, &remote, false).unwrap();
    let m = Mnist::load(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (7996, 2004));
    assert!(leftovers(&dir).iter().all(|f| !f.ends_with(".part")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resumes_an_interrupted_download() {
    let (files, remote) = shipped();
    let dir = tmp("resume");
    std::fs::create_dir_all(&dir).unwrap();
    let name = remote[2].name;
    let half = &files[name][..files[name].len() / 2];
    std::fs::write(dir.join(format!(".{name}.part")), half).unwrap();
    let server = serve(files.clone(), Mode::Good);
    download_files(&dir, &[server.base.clone()], &remote[2..3], false).unwrap();
    assert_eq!(std::fs::read(dir.join(name)).unwrap(), files[name]);
    assert_eq!(
        *server.ranges_seen.lock().unwrap(),
        vec![format!("{}-", half.len())]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_and_truncated_downloads_are_rejected_and_leave_nothing() {
    for mode in [Mode::Corrupt, Mode::Truncate] {
        let (files, remote) = shipped();
        let server = serve(files, mode);
        let dir = tmp(if mode == Mode::Corrupt {
            "corrupt"
        } else {
            "truncated"
        });
        let e = download_files(&dir, &[server.base.clone()], &remote[3..4], false)
            .unwrap_err()
            .to_string();
        let want = if mode == Mode::Corrupt {
            "MD5 mismatch"
        } else {
            "download failed"
        };
        assert!(e.contains(want), "{e}");
        assert!(
            leftovers(&dir).is_empty(),
            "left behind: {:?}",
            leftovers(&dir)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
