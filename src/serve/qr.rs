//! The QR code of an organization's page (一社一码): only its permanent
//! address, error correction M, black on white, a 4-module quiet zone
//! (DOMAIN.md §5). SVG from the `qrcode` crate's renderer; PNG from the
//! module matrix through a minimal encoder (8-bit greyscale, one zlib
//! stream), so no image library is needed.

use std::io::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light border around the symbol.
pub const QUIET_ZONE: usize = 4;

/// Why a code could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("QR code: {0}")]
pub struct QrError(String);

fn code(url: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| QrError(e.to_string()))
}

/// The code as an SVG document, `module_px` user units per module.
pub fn svg(url: &str, module_px: u32) -> Result<String, QrError> {
    let code = code(url)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// The code as a PNG image, `module_px` pixels per module.
pub fn png(url: &str, module_px: usize) -> Result<Vec<u8>, QrError> {
    let code = code(url)?;
    let width = code.width();
    let colors = code.to_colors();
    let module_px = module_px.clamp(1, 32);
    let side = (width + 2 * QUIET_ZONE) * module_px;
    // One filter byte (0: none) then one grey byte per pixel, per row.
    let mut raw = Vec::with_capacity(side * (side + 1));
    for y in 0..side {
        raw.push(0u8);
        let my = (y / module_px).checked_sub(QUIET_ZONE);
        for x in 0..side {
            let mx = (x / module_px).checked_sub(QUIET_ZONE);
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < width && my < width => {
                    colors.get(my * width + mx) == Some(&Color::Dark)
                }
                _ => false,
            };
            raw.push(if dark { 0 } else { 255 });
        }
    }
    encode_grey_png(side as u32, side as u32, &raw)
}

/// A PNG of 8-bit greyscale rows already prefixed by their filter byte.
fn encode_grey_png(width: u32, height: u32, filtered_rows: &[u8]) -> Result<Vec<u8>, QrError> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(filtered_rows)
        .map_err(|e| QrError(e.to_string()))?;
    let idat = z.finish().map_err(|e| QrError(e.to_string()))?;
    let mut out = Vec::with_capacity(idat.len() + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 0 (greyscale), deflate, filter 0, no interlace.
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_has_the_quiet_zone_and_a_valid_structure() {
        let url = "http://127.0.0.1:8080/o/53330000501874064B";
        let bytes = png(url, 4).unwrap_or_default();
        let width = code(url).map(|c| c.width()).unwrap_or_default();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let side = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        // 41 bytes at level M need version 3: 29 modules, plus 2 × 4 quiet.
        assert_eq!(width, 29);
        assert_eq!(side as usize, (width + 2 * QUIET_ZONE) * 4);
        assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    }

    #[test]
    fn the_svg_is_black_on_white() {
        let s = svg("http://127.0.0.1:8080/o/53330000501874064B", 8).unwrap_or_default();
        assert!(s.contains("#000000") && s.contains("#ffffff"), "{s}");
    }
}
