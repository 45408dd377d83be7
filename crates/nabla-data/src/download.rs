//! Downloading MNIST and Fashion-MNIST, like torchvision's `download=True`.
//!
//! Each file is fetched from the first mirror that works into
//! `.NAME.part` beside its destination, with a progress bar on a terminal.
//! A `.part` left by an interrupted run is resumed with an HTTP range
//! request (or restarted if the server ignores ranges). The finished file's
//! MD5 must match the published one; only then is it renamed into place, so
//! a corrupt or truncated download never looks like data. When every mirror
//! fails, the `.part` is removed too and the error says why.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::error::{DataError, Result};

/// A file of a data set and its published MD5.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    pub name: &'static str,
    pub md5: &'static str,
}

pub const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];
pub const MNIST_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        md5: "d53e105ee54ea40749a09fcbcd1e9432",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        md5: "9fb629c4189551a2d022fa330f9573f3",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        md5: "ec29112dd5afa0611ce80d1b7f02629c",
    },
];
pub const FASHION_MNIST_MIRRORS: &[&str] =
    &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];
pub const FASHION_MNIST_FILES: &[RemoteFile] = &[
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        md5: "25c81989df183df01b3e8a0aad5dffbe",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        md5: "bef4ecab320f06d8554ea6380940ec79",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        md5: "bb300cfdad3c16e7a12a480ee83cd310",
    },
];

/// Downloads `mnist` or `fashion-mnist` into torchvision's layout under
/// `root` (`root/MNIST/raw`, `root/FashionMNIST/raw`), skipping files that
/// are already there with the right checksum. Returns the folder.
pub fn download_dataset(name: &str, root: &Path, progress: bool) -> Result<PathBuf> {
    let (sub, mirrors, files) = match name {
        "mnist" => ("MNIST/raw", MNIST_MIRRORS, MNIST_FILES),
        "fashion-mnist" => (
            "FashionMNIST/raw",
            FASHION_MNIST_MIRRORS,
            FASHION_MNIST_FILES,
        ),
        other => {
            return Err(DataError::invalid(
                other,
                "unknown data set (expected mnist or fashion-mnist)",
            ))
        }
    };
    let dir = root.join(sub);
    let mirrors: Vec<String> = mirrors.iter().map(|m| m.to_string()).collect();
    download_files(&dir, &mirrors, files, progress)?;
    Ok(dir)
}

/// Fetches every file of `files` into `dir` from the first working mirror.
pub fn download_files(
    dir: &Path,
    mirrors: &[String],
    files: &[RemoteFile],
    progress: bool,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build(),
    );
    for f in files {
        let dest = dir.join(f.name);
        if dest.is_file() && md5_of_file(&dest)? == f.md5 {
            continue;
        }
        let part = dir.join(format!(".{}.part", f.name));
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{}{}", mirror, f.name);
            match fetch(&agent, &url, &part, progress).and_then(|_| verify(&part, f.md5)) {
                Ok(()) => {
                    std::fs::rename(&part, &dest).map_err(|e| DataError::io(&dest, e))?;
                    done = true;
                    break;
                }
                Err(e) => {
                    // a bad checksum cannot be resumed: start clean at the next mirror
                    if matches!(e, Failure::Checksum(_)) {
                        let _ = std::fs::remove_file(&part);
                    }
                    failures.push(format!("{url}: {e}"));
                }
            }
        }
        if !done {
            let _ = std::fs::remove_file(&part);
            return Err(DataError::invalid(
                &dest,
                format!("download failed: {}", failures.join("; ")),
            ));
        }
    }
    Ok(())
}

#[derive(Debug)]
enum Failure {
    Transfer(String),
    Checksum(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transfer(m) | Failure::Checksum(m) => f.write_str(m),
        }
    }
}

/// Downloads `url` into `part`, resuming from what `part` already holds.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    progress: bool,
) -> std::result::Result<(), Failure> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| Failure::Transfer(e.to_string()))?;
    let status = resp.status().as_u16();
    let (append, start) = match status {
        206 => (true, have),
        200 => (false, 0),
        // the part already holds everything (or is longer): start over
        416 => {
            let _ = std::fs::remove_file(part);
            return fetch(agent, url, part, progress);
        }
        s => return Err(Failure::Transfer(format!("HTTP status {s}"))),
    };
    let length: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Failure::Transfer(format!("{}: {e}", part.display())))?;
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(start + length.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar.set_position(start);
        bar
    });
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Failure::Transfer(format!("transfer interrupted: {e}")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .map_err(|e| Failure::Transfer(format!("{}: {e}", part.display())))?;
        got += n as u64;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    file.sync_all()
        .map_err(|e| Failure::Transfer(e.to_string()))?;
    if let Some(len) = length {
        if got != len {
            return Err(Failure::Transfer(format!(
                "truncated: got {got} of {len} bytes"
            )));
        }
    }
    Ok(())
}

fn verify(part: &Path, md5: &str) -> std::result::Result<(), Failure> {
    let got = md5_of_file(part).map_err(|e| Failure::Transfer(e.to_string()))?;
    if got != md5 {
        return Err(Failure::Checksum(format!(
            "MD5 mismatch: expected {md5}, got {got} (corrupt download)"
        )));
    }
    Ok(())
}

/// Hex MD5 of a file's bytes.
pub fn md5_of_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
