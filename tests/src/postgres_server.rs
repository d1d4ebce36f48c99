//! A PostgreSQL server of a test's own: a new cluster (`initdb`) in a temporary
//! directory, started with `pg_ctl` on a free loopback port, stopped and removed on
//! drop. Uses Debian's `postgresql` binaries (`/usr/lib/postgresql/<version>/bin`, or the
//! directory `PG_BIN` names); as root it runs them as the `postgres` user, since the
//! server refuses to run as root.
#![allow(clippy::missing_panics_doc)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server; [`PostgresServer::url`] reaches it.
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    port: u16,
}

impl PostgresServer {
    /// Starts one, or says why it cannot and returns `None`; with
    /// `FASTAGENTIC_REQUIRE_POSTGRES=1` (as `.ci/run` sets) it panics instead.
    pub fn start() -> Option<PostgresServer> {
        match PostgresServer::try_start() {
            Ok(server) => Some(server),
            Err(why) if std::env::var_os("FASTAGENTIC_REQUIRE_POSTGRES").is_some() => {
                panic!("FASTAGENTIC_REQUIRE_POSTGRES is set, but: {why}")
            }
            Err(why) => {
                eprintln!("skipped: {why}; install Debian's postgresql to run this test");
                None
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn try_start() -> Result<PostgresServer, String> {
        let bin = binaries()?;
        let as_postgres = std::fs::metadata("/proc/self")
            .map_err(|e| e.to_string())?
            .uid()
            == 0;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("fastagentic-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let server = PostgresServer {
            bin,
            dir,
            as_postgres,
            port,
        };
        if as_postgres {
            let (uid, gid) = (id("-u")?, id("-g")?);
            std::os::unix::fs::chown(&server.dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to postgres: {e}", server.dir.display()))?;
        }
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off",
            server.dir.display()
        );
        let log = server.dir.join("server.log");
        server.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )?;
        Ok(server)
    }

    /// Runs `program` of the server's binaries (as `postgres` when this process is
    /// root), failing with what it printed.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{program} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let stopped = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        if let Err(why) = stopped {
            eprintln!("could not stop the test's PostgreSQL: {why}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of `initdb`, `pg_ctl` and `postgres`.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL server here (/usr/lib/postgresql is missing)".to_owned())?;
    let mut found: Vec<(u32, PathBuf)> = versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql".to_owned())
}

fn has_server(bin: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|program| bin.join(program).is_file())
}

/// The `postgres` user's uid (`-u`) or gid (`-g`).
fn id(which: &str) -> Result<u32, String> {
    let output = Command::new("id")
        .args([which, "postgres"])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| "running as root and there is no `postgres` user to run the server".into())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}
