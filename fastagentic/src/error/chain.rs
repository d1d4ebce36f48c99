//! Classification from an error's `source()` chain.

use std::error::Error as StdError;
use std::io;

use super::ErrorClass;

/// Finds the class of the first error in `error`'s chain that says what it is.
///
/// Recognised, at any depth: an [`AgentError`](super::AgentError) that was boxed as a
/// `std::error::Error` (its class), [`std::io::Error`] kinds (timed out → `timeout`; refused,
/// reset, aborted, broken pipe, unreachable, unexpected EOF → `connection_error`),
/// `tokio::time::error::Elapsed` → `timeout`, and the timeout, connect and closed-connection
/// errors of `reqwest` and `hyper`, and the status of a `reqwest` status error. An I/O error that wraps another error is looked into,
/// which `io::Error::source` alone would skip. Returns `None` when nothing in the chain is
/// recognised.
pub fn classify_chain(error: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(class) = classify_one(err) {
            return Some(class);
        }
        current = err.source();
    }
    None
}

fn classify_one(err: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if let Some(agent) = super::find_agent_error(err) {
        return Some(agent.class());
    }
    if let Some(io) = err.downcast_ref::<io::Error>() {
        return classify_io(io);
    }
    if err.is::<tokio::time::error::Elapsed>() {
        return Some(ErrorClass::Timeout);
    }
    if let Some(e) = err.downcast_ref::<reqwest::Error>() {
        return classify_reqwest(e);
    }
    if let Some(e) = err.downcast_ref::<hyper::Error>() {
        return classify_hyper(e);
    }
    None
}

fn classify_io(err: &io::Error) -> Option<ErrorClass> {
    use io::ErrorKind::*;
    match err.kind() {
        TimedOut => Some(ErrorClass::Timeout),
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable | UnexpectedEof => {
            Some(ErrorClass::ConnectionError)
        }
        // `io::Error::source` skips a custom payload and goes straight to *its* source,
        // so look at the payload itself.
        _ => err.get_ref().and_then(|inner| classify_chain(inner)),
    }
}

fn classify_reqwest(err: &reqwest::Error) -> Option<ErrorClass> {
    if err.is_timeout() {
        Some(ErrorClass::Timeout)
    } else if err.is_connect() {
        Some(ErrorClass::ConnectionError)
    } else {
        // `error_for_status()` errors carry the status and nothing else.
        err.status()
            .map(|status| super::http::class_from_status(status.as_u16()))
    }
}

fn classify_hyper(err: &hyper::Error) -> Option<ErrorClass> {
    if err.is_timeout() {
        Some(ErrorClass::Timeout)
    } else if err.is_incomplete_message() || err.is_closed() || err.is_canceled() {
        Some(ErrorClass::ConnectionError)
    } else if err.is_parse() || err.is_parse_status() {
        // The peer answered, but not in HTTP: a broken server or proxy, worth a retry.
        Some(ErrorClass::ServerError)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn io_payload_is_looked_into() {
        let inner = io::Error::from(io::ErrorKind::TimedOut);
        let wrapped = io::Error::other(Outer(Box::new(inner)));
        assert_eq!(classify_chain(&wrapped), Some(ErrorClass::Timeout));
    }

    #[tokio::test]
    async fn tokio_elapsed_is_timeout() {
        tokio::time::pause();
        let elapsed = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        let outer = Outer(Box::new(elapsed));
        assert_eq!(classify_chain(&outer), Some(ErrorClass::Timeout));
    }

    #[tokio::test]
    async fn reqwest_connect_error_deep_in_a_chain() {
        // A port that was just free: bind, note it, close it. The connection is refused
        // without leaving the machine.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = reqwest::Client::new()
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap_err();
        let chain = Outer(Box::new(io::Error::other(Outer(Box::new(err)))));
        assert_eq!(classify_chain(&chain), Some(ErrorClass::ConnectionError));
    }

    #[tokio::test]
    async fn reqwest_status_errors_are_classified_by_status() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let response =
                "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            socket.write_all(response.as_bytes()).await.unwrap();
        });
        let err = reqwest::Client::new()
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        let wrapped = Outer(Box::new(err));
        assert_eq!(classify_chain(&wrapped), Some(ErrorClass::RateLimit));
    }

    #[test]
    fn unknown_chain_is_none() {
        let err = Outer(Box::new(io::Error::other("plain")));
        assert_eq!(classify_chain(&err), None);
    }
}
