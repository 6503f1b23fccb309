//! Image variants for the update-corrupt-image checks (UPD-03..07), made from the maker's
//! valid signed image and the layout declared for its format.

use crate::config::update::{Alter, Derived, Layout, Region, Variant};

/// The files of a cpio "newc" archive: (name, data offset, data length), in order, up to
/// its TRAILER!!! entry. Err when the archive is malformed.
pub fn cpio_entries(a: &[u8]) -> Result<Vec<(String, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let field = |h: &[u8], i: usize| -> Result<usize, String> {
        let s = std::str::from_utf8(&h[6 + i * 8..6 + (i + 1) * 8]).map_err(|_| "cpio: bad header".to_string())?;
        usize::from_str_radix(s, 16).map_err(|_| format!("cpio: bad header field {s:?}"))
    };
    let pad4 = |n: usize| n.div_ceil(4) * 4;
    loop {
        let h = a
            .get(at..at + 110)
            .ok_or_else(|| format!("cpio: archive ends inside a header at byte {at}"))?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return Err(format!("cpio: no newc header at byte {at}"));
        }
        let size = field(h, 6)?;
        let namesize = field(h, 11)?;
        let name_bytes = a
            .get(at + 110..at + 110 + namesize)
            .ok_or("cpio: archive ends inside a file name")?;
        let name = String::from_utf8_lossy(name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes)).into_owned();
        let data = pad4(at + 110 + namesize);
        if name == "TRAILER!!!" {
            return Ok(out);
        }
        if data + size > a.len() {
            return Err(format!("cpio: {name} runs past the end of the archive"));
        }
        out.push((name, data, size));
        at = pad4(data + size);
    }
}

/// Makes a derived variant of `image`; also says which bytes it altered.
pub fn make_derived(image: &[u8], d: &Derived) -> Result<(Vec<u8>, String), String> {
    let (start, len, what) = match &d.region {
        Region::Bytes { start, length } => (*start, *length, format!("bytes {start}..{}", start + length)),
        Region::CpioEntry(name) => {
            let entries = cpio_entries(image)?;
            let (_, s, l) = entries.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
                format!(
                    "the valid image has no {name:?} (its files: {:?})",
                    entries.iter().map(|e| &e.0).collect::<Vec<_>>()
                )
            })?;
            (*s, *l, format!("{name} at bytes {s}..{}", s + l))
        }
    };
    if len == 0 || start + len > image.len() {
        return Err(format!(
            "the protected region {what} is empty or outside the {}-byte image",
            image.len()
        ));
    }
    let at = start + len / 2;
    Ok(match d.alter {
        Alter::Flip => {
            let mut v = image.to_vec();
            v[at] ^= 0x01;
            (v, format!("flipped byte {at} inside {what}"))
        }
        Alter::Truncate => (image[..at].to_vec(), format!("cut at byte {at}, inside {what}")),
    })
}

/// Makes `variant` of `image`; Err when the image is too small for its declared layout.
pub fn make(image: &[u8], layout: &Layout, variant: Variant) -> Result<Vec<u8>, String> {
    if image.is_empty() {
        return Err("the valid image is empty".into());
    }
    let flip = |at: usize| {
        let mut v = image.to_vec();
        v[at] ^= 0x01;
        v
    };
    let (header_len, signature_len) = match *layout {
        Layout::Generic | Layout::Swu { .. } | Layout::Ranges { .. } => (0, 0),
        Layout::SignedTrailer {
            header_len,
            signature_len,
        } => {
            if image.len() <= header_len + signature_len {
                return Err(format!(
                    "the image is {} bytes, too small for a {header_len}-byte header and a {signature_len}-byte signature",
                    image.len()
                ));
            }
            (header_len, signature_len)
        }
    };
    let payload = header_len..image.len() - signature_len;
    Ok(match variant {
        Variant::FlipHeader if header_len > 0 => flip(header_len / 2),
        Variant::FlipPayload => flip(payload.start + payload.len() / 2),
        Variant::FlipSignature if signature_len > 0 => flip(image.len() - signature_len / 2 - 1),
        Variant::FlipStart => flip(0),
        Variant::FlipMiddle => flip(image.len() / 2),
        Variant::FlipEnd => flip(image.len() - 1),
        Variant::Truncated => image[..image.len() / 2].to_vec(),
        Variant::Oversized => {
            let mut v = image.to_vec();
            // garbage that is not all zeros, so a lax length check cannot ignore it
            v.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
            v
        }
        Variant::Empty => Vec::new(),
        Variant::Unsigned if signature_len > 0 => {
            let mut v = image.to_vec();
            let n = v.len();
            v[n - signature_len..].fill(0);
            v
        }
        Variant::FlipHeader | Variant::FlipSignature | Variant::Unsigned => {
            return Err(format!("{variant:?} needs a layout with that region"));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::update::ProtectedRange;

    const SIGNED: Layout = Layout::SignedTrailer {
        header_len: 64,
        signature_len: 64,
    };

    fn image() -> Vec<u8> {
        (0..1000u32).map(|i| i as u8).collect()
    }

    #[test]
    fn each_flip_changes_exactly_one_byte_in_its_region() {
        let img = image();
        for (v, region) in [
            (Variant::FlipHeader, 0..64),
            (Variant::FlipPayload, 64..936),
            (Variant::FlipSignature, 936..1000),
        ] {
            let out = make(&img, &SIGNED, v).expect("variant");
            let diff: Vec<usize> = (0..img.len()).filter(|&i| img[i] != out[i]).collect();
            assert_eq!(diff.len(), 1, "{v:?}");
            assert!(
                region.contains(&diff[0]),
                "{v:?} flipped byte {} outside {region:?}",
                diff[0]
            );
        }
    }

    #[test]
    fn size_variants() {
        let img = image();
        assert_eq!(make(&img, &SIGNED, Variant::Truncated).expect("t").len(), 500);
        let big = make(&img, &SIGNED, Variant::Oversized).expect("o");
        assert_eq!(&big[..1000], &img[..]);
        assert!(big.len() > 1000 && big[1000..].iter().any(|&b| b != 0));
        assert!(make(&img, &SIGNED, Variant::Empty).expect("e").is_empty());
    }

    #[test]
    fn generic_images_still_get_flips_and_size_variants_but_no_region_flips() {
        let img = image();
        for v in Variant::for_layout(&Layout::Generic) {
            assert!(make(&img, &Layout::Generic, *v).is_ok(), "{v:?}");
        }
        assert!(make(&img, &Layout::Generic, Variant::FlipSignature).is_err());
        assert!(make(&img, &Layout::Generic, Variant::Unsigned).is_err());
        let unsigned = make(&img, &SIGNED, Variant::Unsigned).expect("unsigned");
        assert!(unsigned[936..].iter().all(|&b| b == 0) && unsigned[..936] == img[..936]);
    }

    #[test]
    fn an_image_smaller_than_its_layout_is_an_input_error() {
        assert!(make(&[1, 2, 3], &SIGNED, Variant::FlipPayload).is_err());
    }

    /// A cpio newc archive of `files`, padded to 512 bytes as a .swu is.
    fn swu(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut a = Vec::new();
        let pad = |a: &mut Vec<u8>| a.resize(a.len().div_ceil(4) * 4, 0);
        let entry = |a: &mut Vec<u8>, name: &str, data: &[u8]| {
            let fields = [1, 0o100644, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0];
            a.extend_from_slice(b"070701");
            for f in fields {
                a.extend_from_slice(format!("{f:08x}").as_bytes());
            }
            a.extend_from_slice(name.as_bytes());
            a.push(0);
            pad(a);
            a.extend_from_slice(data);
            pad(a);
        };
        for (n, d) in files {
            entry(&mut a, n, d);
        }
        entry(&mut a, "TRAILER!!!", b"");
        a.resize(a.len().div_ceil(512) * 512, 0);
        a
    }

    #[test]
    fn swu_variants_alter_only_the_protected_files_never_the_padding() {
        let desc = b"software = { version = \"2.0.0\"; };".to_vec();
        let sig = vec![7u8; 71];
        let rootfs: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
        let img = swu(&[
            ("sw-description", &desc),
            ("sw-description.sig", &sig),
            ("rootfs.img", &rootfs),
        ]);
        let entries = cpio_entries(&img).expect("parse");
        assert_eq!(
            entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["sw-description", "sw-description.sig", "rootfs.img"]
        );
        let inside = |i: usize| entries.iter().any(|(_, s, l)| (*s..s + l).contains(&i));
        let layout = Layout::Swu {
            artifacts: vec!["rootfs.img".into()],
        };
        let derived = layout.derived();
        assert_eq!(
            derived.iter().map(|d| d.label.as_str()).collect::<Vec<_>>(),
            [
                "flip_sw_description",
                "flip_sw_description_sig",
                "flip_artifact_rootfs_img",
                "truncate_artifact_rootfs_img"
            ]
        );
        for d in &derived {
            let (out, what) = make_derived(&img, d).expect("variant");
            match d.alter {
                Alter::Flip => {
                    let diff: Vec<usize> = (0..img.len()).filter(|&i| img[i] != out[i]).collect();
                    assert_eq!(diff.len(), 1, "{}", d.label);
                    assert!(
                        inside(diff[0]),
                        "{} flipped byte {} outside every file",
                        d.label,
                        diff[0]
                    );
                }
                Alter::Truncate => {
                    let (_, s, l) = entries[2];
                    assert!(out.len() > s && out.len() < s + l, "{what}");
                }
            }
            assert!(what.contains("bytes"), "the evidence names the bytes: {what}");
        }
        // nothing that could land in padding or after the archive
        assert_eq!(Variant::for_layout(&layout), [Variant::Empty]);
        let missing = Layout::Swu {
            artifacts: vec!["kernel.img".into()],
        };
        assert!(
            make_derived(&img, &missing.derived()[2]).is_err(),
            "a named artifact that is not there"
        );
    }

    #[test]
    fn ranges_variants_stay_inside_the_declared_ranges() {
        let img = image();
        let layout = Layout::Ranges {
            ranges: vec![
                ProtectedRange {
                    name: "manifest".into(),
                    start: 10,
                    length: 90,
                    check: None,
                },
                ProtectedRange {
                    name: "sig".into(),
                    start: 500,
                    length: 64,
                    check: Some("UPD-05".into()),
                },
            ],
        };
        let derived = layout.derived();
        assert_eq!(derived.len(), 3);
        assert_eq!(derived[1].check, "UPD-05");
        for d in &derived {
            let (out, _) = make_derived(&img, d).expect("variant");
            if d.alter == Alter::Flip {
                let diff: Vec<usize> = (0..img.len()).filter(|&i| img[i] != out[i]).collect();
                assert!(diff.len() == 1 && ((10..100).contains(&diff[0]) || (500..564).contains(&diff[0])));
            } else {
                assert!(out.len() > 500 && out.len() < 564);
            }
        }
        assert!(cpio_entries(&img).is_err(), "not an archive");
    }
}
