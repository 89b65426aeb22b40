//! Thumbnails (spec: Client-Server API, "Thumbnails"): which size to make for a request, and
//! making it with the `image` crate. Pure and CPU-bound: callers run it on a blocking thread.

use std::io::Cursor;

use image::{
    AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits,
    codecs::{gif::GifDecoder, webp::WebPDecoder},
    imageops::FilterType,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Crop,
    Scale,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Crop => "crop",
            Method::Scale => "scale",
        }
    }
}

/// The sizes the spec says servers should produce. Requests are rounded up to one of them, so
/// the cache holds a handful of thumbnails per image whatever sizes clients ask for.
pub const PREFERRED: [(u32, u32, Method); 5] = [
    (32, 32, Method::Crop),
    (96, 96, Method::Crop),
    (320, 240, Method::Scale),
    (640, 480, Method::Scale),
    (800, 600, Method::Scale),
];

/// Largest width or height a client may ask for; a bigger request is for the original.
pub const MAX_DIMENSION: u32 = 4096;

/// The size and method to make for a request of `width` x `height` with `method`: the smallest
/// preferred size of that method at least as large, then of any method (a scaled image is never
/// smaller than asked), else the requested size itself. The spec forbids returning less than the
/// client asked for.
pub fn choose(width: u32, height: u32, method: Method) -> (u32, u32, Method) {
    let fits = |&&(w, h, _): &&(u32, u32, Method)| w >= width && h >= height;
    PREFERRED
        .iter()
        .filter(|p| p.2 == method)
        .find(fits)
        .or_else(|| PREFERRED.iter().filter(|p| p.2 == Method::Scale).find(fits))
        .copied()
        .unwrap_or((width, height, method))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThumbnailError {
    /// Not an image this server decodes, or a broken one.
    #[error("cannot generate a thumbnail for this content: {0}")]
    Undecodable(String),
    /// Dimensions past the configured pixel limit: refused before decoding.
    #[error("the image is {0} x {1} pixels, more than this server thumbnails")]
    TooLarge(u32, u32),
}

/// The result: either new image bytes, or "serve the original" (it is already no larger than
/// the thumbnail would be, and the spec forbids upscaling).
#[derive(Debug)]
pub enum Thumbnail {
    Made {
        bytes: Vec<u8>,
        content_type: &'static str,
    },
    /// The original, with the content type of what it really is (never the uploader's label,
    /// which could claim a scriptable type for the same bytes).
    Original {
        content_type: &'static str,
    },
}

/// Image dimensions read from the header only, without decoding pixels.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ThumbnailError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Undecodable(e.to_string()))?;
    reader.into_dimensions().map_err(|e| ThumbnailError::Undecodable(e.to_string()))
}

/// Makes a `width` x `height` thumbnail of `bytes` by `method`. `max_pixels` bounds the source
/// image (a decompression bomb is refused from its header). With `animated`, an animated GIF or
/// WebP becomes an animated GIF.
pub fn make(
    bytes: &[u8],
    width: u32,
    height: u32,
    method: Method,
    animated: bool,
    max_pixels: u64,
) -> Result<Thumbnail, ThumbnailError> {
    let undecodable = |e: image::ImageError| ThumbnailError::Undecodable(e.to_string());
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Undecodable(e.to_string()))?;
    let format = reader.format().ok_or_else(|| ThumbnailError::Undecodable("unknown image format".to_owned()))?;
    let mut decoder = {
        let mut reader = reader;
        reader.limits(limits(max_pixels));
        reader.into_decoder().map_err(undecodable)?
    };
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(ThumbnailError::TooLarge(w, h));
    }
    let orientation = decoder.orientation().map_err(undecodable)?;
    let (tw, th) = target(w, h, width, height, method);
    // Photos from phones are stored sideways with an EXIF rotation; only a rotation that
    // leaves the image as it is allows serving the original.
    let upright = orientation == image::metadata::Orientation::NoTransforms;
    if (tw, th) == (w, h) && upright {
        return Ok(Thumbnail::Original { content_type: format.to_mime_type() });
    }
    if animated
        && matches!(format, ImageFormat::Gif | ImageFormat::WebP)
        && let Some(t) = animated_gif(bytes, format, tw, th, method, max_pixels)?
    {
        return Ok(t);
    }
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    let (w, h) = (image.width(), image.height());
    let (tw, th) = target(w, h, width, height, method);
    let thumb = resize(&image, tw, th, method);
    let (bytes, content_type) = encode_still(&thumb, format)?;
    Ok(Thumbnail::Made { bytes, content_type })
}

fn limits(max_pixels: u64) -> Limits {
    let mut l = Limits::default();
    // Four bytes per pixel and a margin for the decoder's own buffers.
    l.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    l
}

/// The thumbnail's size for a `w` x `h` image. Scale fits the image inside the box, keeping its
/// aspect; crop fills the box's aspect. Neither ever upscales.
fn target(w: u32, h: u32, bw: u32, bh: u32, method: Method) -> (u32, u32) {
    let (w64, h64, bw64, bh64) = (u64::from(w), u64::from(h), u64::from(bw), u64::from(bh));
    match method {
        Method::Scale => {
            if w <= bw && h <= bh {
                return (w, h);
            }
            // Fit inside: the tighter of the two ratios wins.
            if bw64 * h64 <= bh64 * w64 {
                (bw, ((h64 * bw64 / w64).max(1)) as u32)
            } else {
                (((w64 * bh64 / h64).max(1)) as u32, bh)
            }
        }
        Method::Crop => {
            if w >= bw && h >= bh {
                return (bw, bh);
            }
            // Too small for the box: the largest box of the same aspect inside the image.
            if w64 * bh64 <= h64 * bw64 {
                (w, ((w64 * bh64 / bw64).max(1)) as u32)
            } else {
                (((h64 * bw64 / bh64).max(1)) as u32, h)
            }
        }
    }
}

fn resize(image: &DynamicImage, tw: u32, th: u32, method: Method) -> DynamicImage {
    if (image.width(), image.height()) == (tw, th) {
        return image.clone();
    }
    match method {
        Method::Scale => image.resize_exact(tw, th, FilterType::Triangle),
        Method::Crop => image.resize_to_fill(tw, th, FilterType::Triangle),
    }
}

/// PNG for images that may have transparency or were lossless, JPEG for photos.
fn encode_still(image: &DynamicImage, source: ImageFormat) -> Result<(Vec<u8>, &'static str), ThumbnailError> {
    let mut out = Cursor::new(Vec::new());
    let fail = |e: image::ImageError| ThumbnailError::Undecodable(e.to_string());
    if source == ImageFormat::Jpeg && !image.color().has_alpha() {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&rgb).map_err(fail)?;
        Ok((out.into_inner(), "image/jpeg"))
    } else {
        image.write_to(&mut out, ImageFormat::Png).map_err(fail)?;
        Ok((out.into_inner(), "image/png"))
    }
}

/// Frames decoded for an animated thumbnail at most; longer animations are cut.
const MAX_FRAMES: usize = 300;

/// An animated GIF thumbnail, or `None` when the source has a single frame.
fn animated_gif(
    bytes: &[u8],
    format: ImageFormat,
    tw: u32,
    th: u32,
    method: Method,
    max_pixels: u64,
) -> Result<Option<Thumbnail>, ThumbnailError> {
    let undecodable = |e: image::ImageError| ThumbnailError::Undecodable(e.to_string());
    let frames = match format {
        ImageFormat::Gif => {
            let mut d = GifDecoder::new(Cursor::new(bytes)).map_err(undecodable)?;
            d.set_limits(limits(max_pixels)).map_err(undecodable)?;
            d.into_frames()
        }
        _ => {
            let d = WebPDecoder::new(Cursor::new(bytes)).map_err(undecodable)?;
            if !d.has_animation() {
                return Ok(None);
            }
            d.into_frames()
        }
    };
    // The source's decoded pixels are bounded like a still image's, over all frames together.
    let mut budget = max_pixels.saturating_mul(4);
    let mut out_frames = Vec::new();
    for frame in frames.take(MAX_FRAMES) {
        let frame = frame.map_err(undecodable)?;
        let (delay, left, top) = (frame.delay(), frame.left(), frame.top());
        let buffer = frame.into_buffer();
        let pixels = u64::from(buffer.width()) * u64::from(buffer.height());
        if pixels > budget {
            break;
        }
        budget -= pixels;
        let _ = (left, top); // frames from `into_frames` are already composited to full size
        let small = resize(&DynamicImage::ImageRgba8(buffer), tw, th, method).to_rgba8();
        out_frames.push(image::Frame::from_parts(small, 0, 0, delay));
    }
    if out_frames.len() < 2 {
        return Ok(None);
    }
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite).map_err(undecodable)?;
        enc.encode_frames(out_frames).map_err(undecodable)?;
    }
    Ok(Some(Thumbnail::Made { bytes: out, content_type: "image/gif" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn made(t: Thumbnail) -> (u32, u32, &'static str, Vec<u8>) {
        match t {
            Thumbnail::Made { bytes, content_type } => {
                let (width, height) = dimensions(&bytes).unwrap();
                (width, height, content_type, bytes)
            }
            Thumbnail::Original { .. } => panic!("expected a new thumbnail"),
        }
    }

    #[test]
    fn requests_round_up_to_the_preferred_sizes_and_never_down() {
        assert_eq!(choose(20, 20, Method::Crop), (32, 32, Method::Crop));
        assert_eq!(choose(64, 64, Method::Crop), (96, 96, Method::Crop));
        assert_eq!(choose(100, 100, Method::Crop), (320, 240, Method::Scale));
        assert_eq!(choose(100, 100, Method::Scale), (320, 240, Method::Scale));
        assert_eq!(choose(640, 481, Method::Scale), (800, 600, Method::Scale));
        assert_eq!(choose(1000, 700, Method::Scale), (1000, 700, Method::Scale));
    }

    #[test]
    fn scale_keeps_the_aspect_and_crop_fills_the_box() {
        let src = png(1000, 500);
        let (w, h, ct, bytes) = made(make(&src, 320, 240, Method::Scale, false, 1 << 30).unwrap());
        assert_eq!((w, h, ct), (320, 160, "image/png"));
        assert_eq!(dimensions(&bytes).unwrap(), (320, 160));
        let (w, h, _, bytes) = made(make(&src, 96, 96, Method::Crop, false, 1 << 30).unwrap());
        assert_eq!((w, h), (96, 96));
        assert_eq!(dimensions(&bytes).unwrap(), (96, 96));
    }

    #[test]
    fn a_small_image_is_served_as_it_is_never_upscaled() {
        assert!(matches!(
            make(&png(200, 100), 320, 240, Method::Scale, false, 1 << 30).unwrap(),
            Thumbnail::Original { content_type: "image/png" }
        ));
        // Crop of a box larger than the image: the biggest part of the box's aspect.
        let (w, h, _, _) = made(make(&png(50, 80), 96, 96, Method::Crop, false, 1 << 30).unwrap());
        assert_eq!((w, h), (50, 50));
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A 10,000 x 10,000 PNG that compresses to almost nothing.
        let src = {
            let img = image::GrayImage::new(10_000, 10_000);
            let mut out = Cursor::new(Vec::new());
            DynamicImage::ImageLuma8(img).write_to(&mut out, ImageFormat::Png).unwrap();
            out.into_inner()
        };
        assert!(src.len() < 1_000_000, "{}", src.len());
        assert_eq!(
            make(&src, 32, 32, Method::Crop, false, 32_000_000).unwrap_err(),
            ThumbnailError::TooLarge(10_000, 10_000)
        );
    }

    #[test]
    fn garbage_is_undecodable() {
        assert!(matches!(
            make(b"%PDF-1.4 not an image", 32, 32, Method::Crop, false, 1 << 30),
            Err(ThumbnailError::Undecodable(_))
        ));
        let mut truncated = png(300, 300);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(make(&truncated, 32, 32, Method::Crop, false, 1 << 30), Err(ThumbnailError::Undecodable(_))));
    }
}
