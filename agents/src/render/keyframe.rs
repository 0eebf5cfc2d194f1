//! Keyframe stills: one full-resolution PNG per scene, taken from the exact frame the video
//! shows at the scene's midpoint, for thumbnails and for the supervisor's visual checks.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::agent::AgentError;
use crate::render::compose::ChannelOrder;

/// Writes a 24-bit image in channel `order` (rows `stride` bytes apart) as an 8-bit RGB PNG
/// at `path`.
pub fn write_png(
    path: &Path,
    data: &[u8],
    stride: usize,
    width: u32,
    height: u32,
    order: ChannelOrder,
) -> Result<(), AgentError> {
    let io =
        |e: &dyn std::fmt::Display| AgentError::Transient(format!("cannot write keyframe {}: {e}", path.display()));
    let file = File::create(path).map_err(|e| io(&e))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| io(&e))?;
    let row = width as usize * 3;
    let mut packed: Vec<u8> = (0..height as usize).flat_map(|y| &data[y * stride..y * stride + row]).copied().collect();
    if order == ChannelOrder::Bgr {
        packed.chunks_exact_mut(3).for_each(|px| px.swap(0, 2));
    }
    writer.write_image_data(&packed).map_err(|e| io(&e))?;
    writer.finish().map_err(|e| io(&e))?;
    Ok(())
}
