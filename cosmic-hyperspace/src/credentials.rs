//! Credentials in the URLs of the services a machine uses (the registry's PostgreSQL, the
//! bus's NATS): they are used to connect and never printed.

/// `url` with its password — after `user:` up to the last `@`, and the value of any
/// parameter whose name holds `pass` (`password`, `sslpassword`, a percent-encoded
/// `pass%77ord`) — replaced by `***`; under any scheme, so a mistyped URL is not printed in
/// clear either.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let mut out = scheme.to_string();
    let rest = match rest.rsplit_once('@') {
        Some((credentials, rest)) => {
            match credentials.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***@")),
                None => out.push_str(&format!("{credentials}@")),
            }
            rest
        }
        None => rest,
    };
    let Some((before, query)) = rest.split_once('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(before);
    out.push('?');
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("pass") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    out.push_str(&pairs.join("&"));
    out
}
