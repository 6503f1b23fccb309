//! HTTP answers the maker declares for paths the device asks its cloud (IXIT): the bench's
//! answer to every flow gives them where it would give an empty 200, so the device goes on
//! as with its real cloud (fetches the image its manifest names, posts what a provisioning
//! answer asks for).

/// One declared answer: a request for `path` (the query is not compared), to `host` if
/// given (else any host), gets `status`, `content_type` and `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredAnswer {
    pub host: Option<String>,
    pub path: String,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The path of an HTTP request target: origin form (`/a/b?q`) or absolute form
/// (`http://host:8080/a/b?q`), without its query and fragment.
pub fn request_path(target: &str) -> &str {
    let t = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    t.split(['?', '#']).next().unwrap_or(t)
}

/// The host of a `Host` header without its port (`[v6]:port` too), lowercased.
fn bare_host(h: &str) -> String {
    let h = h.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        h.rsplit_once(':').map_or(h, |(name, port)| {
            if port.bytes().all(|c| c.is_ascii_digit()) {
                name
            } else {
                h
            }
        })
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl DeclaredAnswer {
    /// Whether a request line's target and its Host header ask for this answer.
    pub fn answers(&self, target: &str, host: Option<&str>) -> bool {
        request_path(target) == self.path
            && self
                .host
                .as_deref()
                .is_none_or(|want| host.is_some_and(|h| bare_host(h) == bare_host(want)))
    }

    /// The first of `list` that answers the request (a host-specific one before any-host).
    pub fn find<'a>(list: &'a [DeclaredAnswer], target: &str, host: Option<&str>) -> Option<&'a DeclaredAnswer> {
        list.iter()
            .filter(|a| a.host.is_some())
            .chain(list.iter().filter(|a| a.host.is_none()))
            .find(|a| a.answers(target, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(host: Option<&str>, path: &str) -> DeclaredAnswer {
        DeclaredAnswer {
            host: host.map(str::to_string),
            path: path.into(),
            status: 200,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn a_declared_answer_matches_its_path_in_either_form_and_its_host_with_any_port() {
        let m = answer(Some("api.example.test"), "/v1/manifest");
        assert!(m.answers("/v1/manifest?device=nd-1", Some("api.example.test:8080")));
        assert!(m.answers("http://API.example.test:8080/v1/manifest", Some("Api.Example.Test.")));
        assert!(!m.answers("/v1/manifest", Some("evil.test")));
        assert!(!m.answers("/v1/manifest", None), "a host-bound answer needs the host");
        assert!(!m.answers("/v1/manifest/x", Some("api.example.test")));
        assert!(!m.answers("/v1/Manifest", Some("api.example.test")), "paths are exact");
        let any = answer(None, "/v1/manifest");
        assert!(any.answers("/v1/manifest#x", None));
        assert_eq!(request_path("http://h"), "/");
        assert_eq!(bare_host("[fd00::1]:80"), "fd00::1");
        // a host-specific answer wins over an any-host one wherever it is listed
        let list = [any.clone(), m.clone()];
        assert_eq!(
            DeclaredAnswer::find(&list, "/v1/manifest", Some("api.example.test")),
            Some(&m)
        );
        assert_eq!(
            DeclaredAnswer::find(&list, "/v1/manifest", Some("other.test")),
            Some(&any)
        );
        assert_eq!(DeclaredAnswer::find(&list, "/nothing", Some("other.test")), None);
    }
}
