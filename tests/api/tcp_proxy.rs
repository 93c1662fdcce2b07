//! A TCP proxy in front of a real server, for outages on demand: while it is
//! down it drops every open connection and every new one.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    address: SocketAddr,
    up: watch::Sender<bool>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut up = state.subscribe();
                if !*up.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        TcpProxy { address, up }
    }

    /// A proxy in front of the test ClickHouse server's HTTP port.
    pub async fn in_front_of_clickhouse() -> Self {
        let upstream: SocketAddr = crate::helpers::clickhouse_support::test_url()
            .expect("tests on ClickHouse check clickhouse_available() first")
            .trim_start_matches("http://")
            .parse()
            .expect("CLICKHOUSE_TEST_URL is http://HOST:PORT");
        Self::start(upstream).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}
