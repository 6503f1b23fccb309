//! Image variants for the update-corrupt-image checks (UPD-03..07), made from the maker's
//! valid signed image and the layout declared for its format.

use serde::{Deserialize, Serialize};

/// Where the parts of an image are, as declared per image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Layout {
    /// Opaque bytes: only byte-flip (at start, middle and end), truncation and size variants.
    Generic,
    /// A header of `header_len` bytes, the payload, then a signature of `signature_len`
    /// bytes at the end.
    SignedTrailer { header_len: usize, signature_len: usize },
}

/// What was done to the valid image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    FlipHeader,
    FlipPayload,
    FlipSignature,
    /// The signature region zeroed: an unsigned image.
    Unsigned,
    /// Generic layout: a flipped byte at the start / middle / end.
    FlipStart,
    FlipMiddle,
    FlipEnd,
    Truncated,
    Oversized,
    Empty,
}

impl Variant {
    /// The variants a layout supports.
    pub fn for_layout(l: Layout) -> &'static [Variant] {
        match l {
            Layout::Generic => &[
                Variant::FlipStart,
                Variant::FlipMiddle,
                Variant::FlipEnd,
                Variant::Truncated,
                Variant::Oversized,
                Variant::Empty,
            ],
            Layout::SignedTrailer { .. } => &[
                Variant::FlipHeader,
                Variant::FlipPayload,
                Variant::FlipSignature,
                Variant::Unsigned,
                Variant::Truncated,
                Variant::Oversized,
                Variant::Empty,
            ],
        }
    }

    /// What was done, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Variant::FlipHeader => "one byte flipped in the header",
            Variant::FlipPayload => "one byte flipped in the payload",
            Variant::FlipSignature => "one byte flipped in the signature",
            Variant::Unsigned => "its signature zeroed (unsigned)",
            Variant::FlipStart => "the first byte flipped",
            Variant::FlipMiddle => "the middle byte flipped",
            Variant::FlipEnd => "the last byte flipped",
            Variant::Truncated => "truncated to half its length",
            Variant::Oversized => "4 KiB of garbage appended",
            Variant::Empty => "empty (0 bytes)",
        }
    }

    /// The check a variant evidences.
    pub fn check(self) -> &'static str {
        match self {
            Variant::FlipHeader
            | Variant::FlipPayload
            | Variant::FlipStart
            | Variant::FlipMiddle
            | Variant::FlipEnd => "UPD-03",
            Variant::Truncated | Variant::Oversized | Variant::Empty => "UPD-04",
            Variant::FlipSignature | Variant::Unsigned => "UPD-05",
        }
    }
}

/// Makes `variant` of `image`; Err when the image is too small for its declared layout.
pub fn make(image: &[u8], layout: Layout, variant: Variant) -> Result<Vec<u8>, String> {
    if image.is_empty() {
        return Err("the valid image is empty".into());
    }
    let flip = |at: usize| {
        let mut v = image.to_vec();
        v[at] ^= 0x01;
        v
    };
    let (header_len, signature_len) = match layout {
        Layout::Generic => (0, 0),
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
            let out = make(&img, SIGNED, v).expect("variant");
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
        assert_eq!(make(&img, SIGNED, Variant::Truncated).expect("t").len(), 500);
        let big = make(&img, SIGNED, Variant::Oversized).expect("o");
        assert_eq!(&big[..1000], &img[..]);
        assert!(big.len() > 1000 && big[1000..].iter().any(|&b| b != 0));
        assert!(make(&img, SIGNED, Variant::Empty).expect("e").is_empty());
    }

    #[test]
    fn generic_images_still_get_flips_and_size_variants_but_no_region_flips() {
        let img = image();
        for v in Variant::for_layout(Layout::Generic) {
            assert!(make(&img, Layout::Generic, *v).is_ok(), "{v:?}");
        }
        assert!(make(&img, Layout::Generic, Variant::FlipSignature).is_err());
        assert!(make(&img, Layout::Generic, Variant::Unsigned).is_err());
        let unsigned = make(&img, SIGNED, Variant::Unsigned).expect("unsigned");
        assert!(unsigned[936..].iter().all(|&b| b == 0) && unsigned[..936] == img[..936]);
    }

    #[test]
    fn an_image_smaller_than_its_layout_is_an_input_error() {
        assert!(make(&[1, 2, 3], SIGNED, Variant::FlipPayload).is_err());
    }
}
