//! The update bench: the images of a run (made once from the maker's files) and the HTTP
//! and HTTPS update servers that serve them, with the log of every transfer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::bench::BenchError;
use crate::bench::http::{HttpRequest, RequestLog, Routes, UpdateServer};
use crate::config::update::{ImageName, Scheme, UpdateSpec};
use crate::model::template::{Quote, Template};

/// An image ready to serve.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: ImageName,
    pub version: String,
    pub data: Bytes,
    pub path: String,
    pub sha256: String,
    /// For an image derived from the valid one: exactly which protected bytes were altered.
    pub altered: Option<String>,
}

#[derive(Debug)]
pub struct UpdateBench {
    pub spec: UpdateSpec,
    pub http: UpdateServer,
    pub https: Option<UpdateServer>,
    pub routes: Routes,
    pub log: Arc<RequestLog>,
    /// Where a body is held (a download paused at an exact byte).
    pub hold: crate::bench::http::Hold,
    /// The CA certificate a device must trust for HTTPS updates (bench CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// The version the device ran when first asked in this run.
    pub baseline: Option<String>,
    /// Images made so far, by name.
    images: BTreeMap<String, Image>,
    pki: crate::bench::pki::Pki,
    switch: crate::bench::http::TlsSwitch,
}

impl UpdateBench {
    /// Binds the servers on `bind` (ports 0 = any) and makes the HTTPS identity.
    pub async fn start(
        spec: &UpdateSpec,
        bind: IpAddr,
        ports: (u16, u16),
        attribution: crate::model::Attribution,
        dir: &Path,
    ) -> Result<Self, BenchError> {
        let hold: crate::bench::http::Hold = Arc::default();
        let routes: Routes = Arc::default();
        let log = Arc::new(RequestLog::new(hold.clone(), attribution));
        let http = UpdateServer::start(SocketAddr::new(bind, ports.0), None, routes.clone(), log.clone()).await?;
        let pki_dir = dir.join("update-pki");
        std::fs::create_dir_all(&pki_dir).map_err(|source| BenchError::Dir {
            path: pki_dir.clone(),
            source,
        })?;
        let pki = crate::bench::pki::Pki::new(&spec.host, &spec.trust, &pki_dir)?;
        let ca_file = pki.ca_file.clone();
        let switch: crate::bench::http::TlsSwitch = Arc::default();
        let https = if pki.has_trusted_ca() {
            Some(
                UpdateServer::start(
                    SocketAddr::new(bind, ports.1),
                    Some(switch.clone()),
                    routes.clone(),
                    log.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        if spec.scheme == Scheme::Https && https.is_none() {
            return Err(BenchError::Unavailable(
                "update.scheme is https but the device trusts no CA the bench can issue from (update.trust)".into(),
            ));
        }
        let mut me = Self {
            spec: spec.clone(),
            http,
            https,
            routes,
            log,
            hold,
            ca_file,
            baseline: None,
            images: BTreeMap::new(),
            pki,
            switch,
        };
        if me.https.is_some() {
            me.present(crate::model::CertVariant::Valid)?;
        }
        Ok(me)
    }

    /// What the HTTPS server presents from now on (a man in the middle, or the valid
    /// identity). Err when the variant needs a CA the device trusts and there is none.
    pub fn present(&mut self, v: crate::model::CertVariant) -> Result<(), BenchError> {
        let cfg = self.pki.server_config(v)?.ok_or_else(|| {
            BenchError::Unavailable(format!(
                "the bench cannot present {}: no CA the device trusts",
                v.describe()
            ))
        })?;
        *self.switch.write().unwrap_or_else(|p| p.into_inner()) = Some((v.describe().to_string(), cfg));
        Ok(())
    }

    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert("update.url".into(), self.base_url());
        v.insert("update.host".into(), self.spec.host.clone());
        v.insert(
            "update.ca_cert".into(),
            self.ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        v.insert("bench.update_http.port".into(), self.http.addr.port().to_string());
        v.insert(
            "bench.update_https.port".into(),
            self.https
                .as_ref()
                .map(|s| s.addr.port().to_string())
                .unwrap_or_default(),
        );
        v
    }

    /// `scheme://address:port` of the server the profile's scheme selects.
    pub fn base_url(&self) -> String {
        match (&self.spec.scheme, &self.https) {
            (Scheme::Https, Some(s)) => format!("https://{}", s.addr),
            _ => format!("http://{}", self.http.addr),
        }
    }

    /// Makes (once) and returns the image `name`, reading the maker's files with `vars`.
    pub fn image(&mut self, name: ImageName, vars: &BTreeMap<String, String>) -> Result<Image, String> {
        let key = name.as_str();
        if let Some(i) = self.images.get(&key) {
            return Ok(i.clone());
        }
        // the gate every named file passes, at run as at validate: inside the profile's
        // folder or the run's work folder (where a setup signs images), links followed
        let roots: Vec<std::path::PathBuf> = ["profile_dir", "workdir"]
            .iter()
            .filter_map(|k| vars.get(*k).map(std::path::PathBuf::from))
            .collect();
        let read = |t: &Template| -> Result<Vec<u8>, String> {
            let p = t.render(vars, Quote::Raw)?;
            let roots: Vec<&std::path::Path> = roots.iter().map(|r| r.as_path()).collect();
            crate::util::read_user_file(std::path::Path::new(&p), &roots, crate::util::limits::IMAGE)
                .map_err(|e| format!("cannot read the maker's image: {e}"))
        };
        let missing = |what: &str| format!("the profile supplies no {what} image (update.images.{what})");
        let mut altered = None;
        let (data, version) = match &name {
            ImageName::Valid => (read(&self.spec.valid.file)?, self.spec.valid.version.clone()),
            ImageName::Older => {
                let i = self.spec.older.as_ref().ok_or_else(|| missing("older"))?;
                (read(&i.file)?, i.version.clone())
            }
            ImageName::OtherModel => {
                let i = self.spec.other_model.as_ref().ok_or_else(|| missing("other_model"))?;
                (read(&i.file)?, i.version.clone())
            }
            ImageName::Supplied(h) => {
                let version = h.version.clone().unwrap_or_else(|| self.spec.valid.version.clone());
                match &h.source {
                    crate::config::update::HostileSource::File(t) => (read(t)?, version),
                    crate::config::update::HostileSource::Derived(d) => {
                        let valid = self.image(ImageName::Valid, vars)?;
                        let (data, what) = super::variants::make_derived(&valid.data, d)?;
                        altered = Some(what);
                        (data, version)
                    }
                }
            }
            ImageName::Variant(v) => {
                let valid = self.image(ImageName::Valid, vars)?;
                (
                    super::variants::make(&valid.data, &self.spec.layout, *v)?,
                    self.spec.valid.version.clone(),
                )
            }
        };
        let mut pv = vars.clone();
        pv.insert("image".into(), key.clone());
        let path = self.spec.image_path.render(&pv, Quote::Raw)?;
        let img = Image {
            name,
            version,
            sha256: crate::util::sha256_hex(&data),
            data: Bytes::from(data),
            path,
            altered,
        };
        self.images.insert(key, img.clone());
        Ok(img)
    }

    /// Variables describing `img` for the delivery templates.
    pub fn image_vars(&self, img: &Image, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut v = vars.clone();
        v.extend(self.vars());
        v.insert("image".into(), img.name.as_str());
        v.insert("image.version".into(), img.version.clone());
        v.insert("image.path".into(), img.path.clone());
        v.insert("image.url".into(), format!("{}{}", self.base_url(), img.path));
        v.insert("image.size".into(), img.data.len().to_string());
        v.insert("image.sha256".into(), img.sha256.clone());
        v
    }

    /// Serves `img` at its path (and, for pull delivery, a manifest offering it).
    pub fn offer(&self, img: &Image, vars: &BTreeMap<String, String>) -> Result<(), BenchError> {
        let mut r = self.routes.write().unwrap_or_else(|p| p.into_inner());
        r.insert(img.path.clone(), img.data.clone());
        // the manifest only when the image is offered by pull: the testcase then says which
        // path the device used
        if let Some(crate::config::update::Delivery::Pull {
            manifest_path,
            manifest,
        }) = self.spec.delivery()
        {
            let text = manifest
                .render(&self.image_vars(img, vars), Quote::Raw)
                .map_err(BenchError::Template)?;
            r.insert(manifest_path.clone(), Bytes::from(text));
        }
        Ok(())
    }

    /// Stops offering anything: the manifest and images answer 404.
    pub fn withdraw(&self) {
        self.routes.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Holds the body at `path` after `bytes` (None: releases any hold).
    pub fn hold(&self, at: Option<(&str, u64)>) {
        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = at.map(|(p, n)| (p.to_string(), n));
    }

    /// Requests since `from` (an index into the log).
    pub fn requests_since(&self, from: usize) -> Vec<HttpRequest> {
        self.log.snapshot().into_iter().skip(from).collect()
    }
}
