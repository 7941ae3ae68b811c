//! `tonghop serve` as a separate process of the built binary, for the tests that need what an
//! in-process server cannot show: the command line, signals, a crash, several processes on one
//! database. Its stderr is read on a thread, both to learn the address it listens on and so that
//! the server never blocks on a full pipe.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonghop::grpc::client::AggregatorClient;

pub const BIN: &str = env!("CARGO_BIN_EXE_tonghop");

/// `tonghop serve` with an info log (the address is read from it) and no colours in it; the
/// caller adds the listen address, the database and the transport.
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    command
}

/// `tonghop serve --insecure --listen <listen> --database-url <database_url>`.
pub fn insecure(listen: &str, database_url: &str) -> Command {
    let mut command = command();
    command.args([
        "--insecure",
        "--listen",
        listen,
        "--database-url",
        database_url,
    ]);
    command
}

/// A `tonghop serve` process and its log. Dropping it kills the process, so that a failed
/// assertion leaves no server running (and no database in use).
pub struct Server {
    child: Option<Child>,
    /// Where it listens, as it logged it (`127.0.0.1:50051`).
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// A server spawned but not yet known to listen; see [`Starting::listening`].
pub struct Starting {
    server: Server,
    addr: Receiver<String>,
}

impl Server {
    /// Spawns `command` and returns at once, so that several servers can start together (and
    /// race on the database's migrations).
    pub fn spawn(mut command: Command) -> Starting {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tonghop serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            // Keep draining after the address, so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // "aggregator listening" comes last before serving; earlier lines carry the
                // address too (the plaintext warning), but the server is not up yet then.
                let mut addr = None;
                if !sent
                    && line.contains("aggregator listening")
                    && let Some(rest) = line.split("addr=").nth(1)
                {
                    addr = Some(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                lines.lock().expect("log lock").push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        Starting {
            server: Server {
                child: Some(child),
                addr: String::new(),
                log,
            },
            addr: rx,
        }
    }

    /// Spawns `command` and waits until the server listens.
    pub fn start(command: Command) -> Server {
        Server::spawn(command).listening()
    }

    /// The plaintext endpoint, for a server started with `--insecure`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> AggregatorClient {
        AggregatorClient::connect(&self.endpoint())
            .await
            .expect("connect to a server")
    }

    /// Everything the server has logged so far, for failure messages and log assertions.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Sends `signal` (`TERM`, `KILL`) with kill(1), as systemd, Docker or a crash would;
    /// returns how kill(1) ended.
    pub fn signal(&self, signal: &str) -> ExitStatus {
        let child = self.child.as_ref().expect("running");
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill -{signal}: {e}"))
    }

    /// Waits for the process to end (after a signal) and returns how it ended.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.take().expect("running").wait()
    }

    /// SIGTERM, as systemd and Docker stop it, then up to 30 s for the process to end.
    pub fn terminate(&mut self) -> ExitStatus {
        assert!(self.signal("TERM").success());
        let started = Instant::now();
        loop {
            // The child stays in `self` until it has ended, so a panic here still kills it.
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Starting {
    /// The server before it listens: its log so far, and signals sent during start-up.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Waits up to 60 s for the server to log that it listens; panics with its log if not.
    pub fn listening(self) -> Server {
        let Starting { mut server, addr } = self;
        // On a panic here `server` is dropped, which kills the process.
        server.addr = addr
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("a server did not log its address:\n{}", server.log_text()));
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
